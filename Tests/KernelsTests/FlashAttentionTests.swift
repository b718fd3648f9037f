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

    /// Forward, then (with dOut) backward, on [B, T, heads·d] operands; with a `margin`, each
    /// operand and gradient is a strided view inside wider rows (whose NaN margins must stay so).
    static func run(q: [Float], k: [Float], v: [Float], dOut: [Float]?, dims: AttentionDims, threads: Int = Threading.count,
                    margin: Int = 0) -> Result {
        let (queryRows, keyRows) = (dims.batch * dims.queryLength, dims.batch * dims.keyLength)
        let (qWidth, kvWidth) = (dims.heads * dims.headDim, dims.kvHeads * dims.headDim)
        let operands = Run.AttentionOperands(q: q, k: k, v: v, dims: dims, margin: margin)
        let out = Matrix(rows: queryRows, columns: qWidth, repeating: .nan, margin: margin)
        let logSumExp = unwritten(dims.batch * dims.heads * dims.queryLength)
        let workspace = unwritten(FlashAttention.workspaceCount(keyLength: dims.keyLength, headDim: dims.headDim, threads: threads))  // whatever it held must not matter
        let dQ = Matrix(rows: queryRows, columns: qWidth, repeating: 0, margin: margin)
        let dK = Matrix(rows: keyRows, columns: kvWidth, repeating: 0, margin: margin)
        let dV = Matrix(rows: keyRows, columns: kvWidth, repeating: 0, margin: margin)
        let offset = dims.keyLength - dims.queryLength
        FlashAttention.forward(q: operands.q.view, k: operands.k.view, v: operands.v.view, out: out.view,
                               logSumExp: logSumExp.storage, workspace: workspace.storage, dims: dims, queryOffset: offset)
        if let dOut {
            let dOut = Matrix(dOut, rows: queryRows, columns: qWidth, margin: margin)
            FlashAttention.backward(q: operands.q.view, k: operands.k.view, v: operands.v.view, out: out.view, dOut: dOut.view,
                                    logSumExp: logSumExp.storage, dQ: dQ.view, dK: dK.view, dV: dV.view,
                                    workspace: workspace.storage, dims: dims, queryOffset: offset)
        }
        for (matrix, name) in [(out, "out"), (dQ, "dQ"), (dK, "dK"), (dV, "dV")] {
            XCTAssertTrue(matrix.marginsUntouched, "flash attention \(dims) wrote outside \(name)'s columns")
        }
        return Result(out: out.array, logSumExp: logSumExp.array, dQ: dQ.array, dK: dK.array, dV: dV.array)
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
            Self.assertGradientsMatchFiniteDifferences(flash, q: q, k: k, v: v, dOut: dOut, dims: dims,
                                                       samples: tq > 10 ? 12 : nil, rng: &rng, "Tq \(tq) Tk \(tk)")
        }
    }

    /// dQ, dK and dV of `result` against central finite differences of the Double reference's
    /// loss Σ out ⊙ dOut: every coordinate, or `samples` random ones of each.
    static func assertGradientsMatchFiniteDifferences(_ result: Result, q: [Float], k: [Float], v: [Float], dOut: [Float],
                                                      dims: AttentionDims, samples: Int?, rng: inout SeededGenerator,
                                                      _ label: String) {
        let (qd, kd, vd, od) = (widened(q), widened(k), widened(v), widened(dOut))
        func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double {
            zip(Run.referenceAttention(q, k, v, dims: dims, causal: true), od).map(*).reduce(0, +)
        }
        for (name, ours, input) in [("dQ", result.dQ, qd), ("dK", result.dK, kd), ("dV", result.dV, vd)] {
            var indices = Array(input.indices)
            if let samples, indices.count > samples { indices = (0..<samples).map { _ in Int.random(in: input.indices, using: &rng) } }
            for index in indices {
                var plus = input, minus = input
                plus[index] += 1e-6
                minus[index] -= 1e-6
                let f = { (x: [Double]) -> Double in name == "dQ" ? loss(x, kd, vd) : name == "dK" ? loss(qd, x, vd) : loss(qd, kd, x) }
                let numeric = (f(plus) - f(minus)) / 2e-6
                XCTAssertEqual(Double(ours[index]), numeric, accuracy: 1e-5 + 1e-4 * abs(numeric), "\(name)[\(index)] \(label)")
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

    /// Operands and gradients as strided views inside wider rows (NaN margins), across the query
    /// and key tiles and with a cache offset: forward against the reference, backward against
    /// the standard kernel on packed operands.
    func testStridedOperandsInsideWiderRows() {
        var rng = SeededGenerator(seed: 94)
        for (tq, tk, margin) in [(1, 1, 1), (7, 7, 3), (131, 131, 2), (67, 300, 5)] {
            let dims = AttentionDims(batch: 2, queryLength: tq, keyLength: tk, heads: 4, kvHeads: 2, headDim: 8)
            let q = rng.uniform(2 * tq * 32), k = rng.uniform(2 * tk * 16), v = rng.uniform(2 * tk * 16), dOut = rng.uniform(2 * tq * 32)
            let flash = Self.run(q: q, k: k, v: v, dOut: dOut, dims: dims, margin: margin)
            let expected = Run.referenceAttention(widened(q), widened(k), widened(v), dims: dims, causal: true)
            assertClose(flash.out, expected, absolute: reductionTolerance(tk + 8), relative: 1e-5, "strided flash forward Tq \(tq) Tk \(tk)")
            let (_, probs) = Run.attention(q: q, k: k, v: v, dims: dims, causalOffset: tk - tq)
            let standard = Run.attentionBackward(q: q, k: k, v: v, probs: probs, dOut: dOut, dims: dims, mask: .causal(queryOffset: tk - tq))
            assertClose(flash.dQ, widened(standard.dQ), absolute: 1e-5, relative: 1e-4, "strided dQ Tq \(tq) Tk \(tk)")
            assertClose(flash.dK, widened(standard.dK), absolute: 1e-5, relative: 1e-4, "strided dK Tq \(tq) Tk \(tk)")
            assertClose(flash.dV, widened(standard.dV), absolute: 1e-5, relative: 1e-4, "strided dV Tq \(tq) Tk \(tk)")
        }
    }
}
