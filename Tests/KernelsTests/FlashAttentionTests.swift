import Foundation
import Kernels
import ReferenceKernels
import TestSupport
import XCTest

/// The memory-efficient kernel against the reference (forward, log-sum-exp), finite
/// differences (backward), and the standard kernel, over lengths that are 1, prime, and on
/// either side of the 128-row query and 256-key tiles.
final class FlashAttentionTests: XCTestCase {
    struct Result { var out: [Float]; var logSumExp: [Float]; var dQ: [Float]; var dK: [Float]; var dV: [Float] }

    /// Forward, then (with dOut) backward, on contiguous [B, T, heads·d] operands.
    static func run(q: [Float], k: [Float], v: [Float], dOut: [Float]?, dims: AttentionDims, threads: Int = Threading.count) -> Result {
        let (tq, tk, d) = (dims.queryLength, dims.keyLength, dims.headDim)
        let (qWidth, kvWidth) = (dims.heads * d, dims.kvHeads * d)
        let queryLayout = HeadLayout(rowStride: qWidth, batchStride: tq * qWidth), keyLayout = HeadLayout(rowStride: kvWidth, batchStride: tk * kvWidth)
        var result = Result(out: [Float](repeating: .nan, count: q.count), logSumExp: [Float](repeating: .nan, count: dims.batch * dims.heads * tq),
                            dQ: [Float](repeating: 0, count: q.count), dK: [Float](repeating: 0, count: k.count), dV: [Float](repeating: 0, count: v.count))
        let workspace = UnsafeMutableBufferPointer<Float>.allocate(capacity: FlashAttention.workspaceCount(threads: threads))
        defer { workspace.deallocate() }
        workspace.initialize(repeating: .nan)  // whatever it held must not matter
        let offset = tk - tq
        q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
            result.out.withUnsafeMutableBufferPointer { out in result.logSumExp.withUnsafeMutableBufferPointer { lse in
                FlashAttention.forward(q: q.baseAddress!, queryLayout: queryLayout, k: k.baseAddress!, v: v.baseAddress!, keyLayout: keyLayout,
                                       out: out.baseAddress!, outputLayout: queryLayout, logSumExp: lse, workspace: workspace,
                                       dims: dims, queryOffset: offset)
                guard let dOut else { return }
                dOut.withUnsafeBufferPointer { dO in
                    result.dQ.withUnsafeMutableBufferPointer { dq in result.dK.withUnsafeMutableBufferPointer { dk in result.dV.withUnsafeMutableBufferPointer { dv in
                        FlashAttention.backward(q: q.baseAddress!, queryLayout: queryLayout, k: k.baseAddress!, v: v.baseAddress!, keyLayout: keyLayout,
                                                out: UnsafePointer(out.baseAddress!), dOut: dO.baseAddress!, outputLayout: queryLayout,
                                                logSumExp: UnsafeBufferPointer(lse), dQ: dq.baseAddress!, dK: dk.baseAddress!, dV: dv.baseAddress!,
                                                workspace: workspace, dims: dims, queryOffset: offset)
                    } } }
                }
            } }
        } } }
        return result
    }

    func testForwardMatchesReferenceAndStandardKernelOverAwkwardLengths() {
        var rng = SeededGenerator(seed: 91)
        for (tq, tk) in [(1, 1), (1, 40), (2, 2), (7, 7), (63, 63), (64, 64), (65, 65), (127, 127), (129, 129), (131, 131), (67, 200), (257, 257)] {
            let dims = AttentionDims(batch: 2, queryLength: tq, keyLength: tk, heads: 4, kvHeads: 2, headDim: 8)
            let q = rng.uniform(2 * tq * 32, scale: 3), k = rng.uniform(2 * tk * 16, scale: 3), v = rng.uniform(2 * tk * 16)
            let flash = Self.run(q: q, k: k, v: v, dOut: nil, dims: dims)
            let expected = Run.referenceAttention(widened(q), widened(k), widened(v), dims: dims, causal: true)
            assertClose(flash.out, expected, absolute: reductionTolerance(tk + 8, scale: 3), relative: 1e-5, "flash forward Tq \(tq) Tk \(tk)")
            let standard = Run.attention(q: q, k: k, v: v, dims: dims, causalOffset: tk - tq)
            assertClose(flash.out, widened(standard.out), absolute: 1e-5, relative: 1e-5, "flash vs standard Tq \(tq) Tk \(tk)")
            // L = log Σ_visible exp(scale · q·k), in Double.
            for b in 0..<2 { for h in 0..<4 { for t in [0, tq / 2, tq - 1] {
                let g = h / 2
                var scores: [Double] = []
                for key in 0...(tk - tq + t) {
                    var dot = 0.0
                    for c in 0..<8 { dot += Double(q[(b * tq + t) * 32 + h * 8 + c]) * Double(k[(b * tk + key) * 16 + g * 8 + c]) }
                    scores.append(dot / 8.0.squareRoot())
                }
                let top = scores.max()!
                let lse = top + Foundation.log(scores.reduce(0) { $0 + Foundation.exp($1 - top) })
                XCTAssertEqual(Double(flash.logSumExp[(b * 4 + h) * tq + t]), lse, accuracy: 1e-5 * max(1, abs(lse)), "L at b\(b) h\(h) t\(t), Tq \(tq) Tk \(tk)")
            } } }
        }
    }

    /// Central finite differences of the Double reference: every coordinate for small lengths,
    /// a sample of coordinates past the tile sizes.
    func testBackwardMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 92)
        for (tq, tk, batch) in [(1, 1, 2), (5, 5, 2), (3, 11, 1), (67, 67, 1), (131, 131, 1)] {
            let dims = AttentionDims(batch: batch, queryLength: tq, keyLength: tk, heads: 4, kvHeads: 2, headDim: 8)
            let q = rng.uniform(batch * tq * 32), k = rng.uniform(batch * tk * 16), v = rng.uniform(batch * tk * 16)
            let dOut = rng.uniform(batch * tq * 32)
            let flash = Self.run(q: q, k: k, v: v, dOut: dOut, dims: dims)
            let (qd, kd, vd, od) = (widened(q), widened(k), widened(v), widened(dOut))
            func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double {
                zip(Run.referenceAttention(q, k, v, dims: dims, causal: true), od).map(*).reduce(0, +)
            }
            let samples = tq > 10 ? 12 : Int.max
            for (name, ours, input) in [("dQ", flash.dQ, qd), ("dK", flash.dK, kd), ("dV", flash.dV, vd)] {
                var indices = Array(input.indices)
                if indices.count > samples { indices = (0..<samples).map { _ in Int.random(in: input.indices, using: &rng) } }
                for index in indices {
                    var plus = input, minus = input
                    plus[index] += 1e-6
                    minus[index] -= 1e-6
                    let f = { (x: [Double]) -> Double in name == "dQ" ? loss(x, kd, vd) : name == "dK" ? loss(qd, x, vd) : loss(qd, kd, x) }
                    let numeric = (f(plus) - f(minus)) / 2e-6
                    XCTAssertEqual(Double(ours[index]), numeric, accuracy: 1e-5 + 1e-4 * abs(numeric), "\(name)[\(index)] Tq \(tq) Tk \(tk)")
                }
            }
        }
    }

    /// Over many tiles, the recomputing backward equals the standard one (which keeps P), at one
    /// thread and at three (grouped heads never share a thread's dK, dV).
    func testBackwardEqualsStandardKernelOverManyTiles() {
        var rng = SeededGenerator(seed: 93)
        let original = Threading.count
        defer { Threading.count = original }
        for (tq, tk) in [(270, 270), (70, 300)] {
            let dims = AttentionDims(batch: 2, queryLength: tq, keyLength: tk, heads: 4, kvHeads: 2, headDim: 16)
            let q = rng.uniform(2 * tq * 64), k = rng.uniform(2 * tk * 32), v = rng.uniform(2 * tk * 32), dOut = rng.uniform(2 * tq * 64)
            let (_, probs) = Run.attention(q: q, k: k, v: v, dims: dims, causalOffset: tk - tq)
            let standard = Run.attentionBackward(q: q, k: k, v: v, probs: probs, dOut: dOut, dims: dims, mask: .causal(queryOffset: tk - tq))
            for threads in [1, 3] {
                Threading.count = threads
                let flash = Self.run(q: q, k: k, v: v, dOut: dOut, dims: dims, threads: threads)
                assertClose(flash.dQ, widened(standard.dQ), absolute: 1e-5, relative: 1e-4, "dQ \(tq)×\(tk), \(threads) threads")
                assertClose(flash.dK, widened(standard.dK), absolute: 1e-5, relative: 1e-4, "dK \(tq)×\(tk), \(threads) threads")
                assertClose(flash.dV, widened(standard.dV), absolute: 1e-5, relative: 1e-4, "dV \(tq)×\(tk), \(threads) threads")
            }
        }
    }
}
