import Foundation
import Kernels
import ReferenceKernels
import TestSupport
import XCTest

/// The hand-vectorised tiles of the memory-efficient kernel (head sizes a multiple of 16 on an
/// AVX2 CPU) against the Double reference, finite differences, and the cblas_sgemm tiles on the
/// same inputs, over lengths on either side of the 192-row query block and the key tiles, with
/// grouped heads, cache offsets, strided operands and several threads.
final class FlashAttentionHandKernelTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(FlashAttention.runsHandKernels(headDim: 16),
                          "this CPU has no AVX2+FMA: the hand-vectorised attention tiles do not run (the GEMM path is tested in FlashAttentionTests)")
    }

    override func tearDown() {
        FlashAttention.usesHandKernels = true
    }

    /// Runs the memory-efficient kernel on the GEMM tiles instead of the hand-vectorised ones.
    static func onGEMMTiles<R>(_ body: () -> R) -> R {
        FlashAttention.usesHandKernels = false
        defer { FlashAttention.usesHandKernels = true }
        return body()
    }

    func testForwardMatchesReferenceAndGEMMTiles() {
        var rng = SeededGenerator(seed: 191)
        for headDim in [16, 32, 64] {
            for (tq, tk) in [(1, 1), (1, 200), (5, 5), (47, 47), (97, 97), (191, 191), (192, 192), (193, 193), (70, 300), (390, 390)] {
                let dims = AttentionDims(batch: 2, queryLength: tq, keyLength: tk, heads: 4, kvHeads: 2, headDim: headDim)
                let (qWidth, kvWidth) = (4 * headDim, 2 * headDim)
                let q = rng.uniform(2 * tq * qWidth, scale: 2), k = rng.uniform(2 * tk * kvWidth, scale: 2), v = rng.uniform(2 * tk * kvWidth)
                let hand = FlashAttentionTests.run(q: q, k: k, v: v, dOut: nil, dims: dims)
                let gemm = Self.onGEMMTiles { FlashAttentionTests.run(q: q, k: k, v: v, dOut: nil, dims: dims) }
                let expected = Run.referenceAttention(widened(q), widened(k), widened(v), dims: dims, causal: true)
                let label = "d\(headDim) Tq \(tq) Tk \(tk)"
                assertClose(hand.out, expected, absolute: reductionTolerance(tk + headDim, scale: 2), relative: 1e-5, "hand tiles vs reference, \(label)")
                assertClose(hand.out, widened(gemm.out), absolute: 1e-5, relative: 1e-5, "hand tiles vs GEMM tiles, \(label)")
                assertClose(hand.logSumExp, widened(gemm.logSumExp), absolute: 1e-5, relative: 1e-5, "log-sum-exp, \(label)")
            }
        }
    }

    /// Central finite differences of the Double reference, on a sample of coordinates.
    func testBackwardMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 192)
        for (tq, tk, headDim) in [(3, 3, 16), (7, 20, 32), (200, 200, 16)] {
            let dims = AttentionDims(batch: 1, queryLength: tq, keyLength: tk, heads: 2, kvHeads: 1, headDim: headDim)
            let q = rng.uniform(tq * 2 * headDim), k = rng.uniform(tk * headDim), v = rng.uniform(tk * headDim)
            let dOut = rng.uniform(tq * 2 * headDim)
            let hand = FlashAttentionTests.run(q: q, k: k, v: v, dOut: dOut, dims: dims)
            FlashAttentionTests.assertGradientsMatchFiniteDifferences(hand, q: q, k: k, v: v, dOut: dOut, dims: dims, samples: 16,
                                                                      rng: &rng, "d\(headDim) Tq \(tq) Tk \(tk)")
        }
    }

    /// The backward against the GEMM tiles' over many tiles and query blocks, at one thread and
    /// at three, with a cache offset; and operands as strided views inside wider rows.
    func testBackwardEqualsGEMMTilesAcrossThreadsAndStrides() {
        var rng = SeededGenerator(seed: 193)
        let original = Threading.count
        defer { Threading.count = original }
        for (tq, tk, headDim, margin) in [(400, 400, 32, 0), (70, 300, 16, 3), (193, 193, 64, 5), (1, 150, 32, 1)] {
            let dims = AttentionDims(batch: 2, queryLength: tq, keyLength: tk, heads: 6, kvHeads: 2, headDim: headDim)
            let (qWidth, kvWidth) = (6 * headDim, 2 * headDim)
            let q = rng.uniform(2 * tq * qWidth), k = rng.uniform(2 * tk * kvWidth), v = rng.uniform(2 * tk * kvWidth)
            let dOut = rng.uniform(2 * tq * qWidth)
            let gemm = Self.onGEMMTiles { FlashAttentionTests.run(q: q, k: k, v: v, dOut: dOut, dims: dims) }
            for threads in [1, 3] {
                Threading.count = threads
                let hand = FlashAttentionTests.run(q: q, k: k, v: v, dOut: dOut, dims: dims, threads: threads, margin: margin)
                let label = "Tq \(tq) Tk \(tk) d\(headDim), \(threads) threads, margin \(margin)"
                assertClose(hand.out, widened(gemm.out), absolute: 1e-5, relative: 1e-5, "out, \(label)")
                assertClose(hand.dQ, widened(gemm.dQ), absolute: 1e-5, relative: 1e-4, "dQ, \(label)")
                assertClose(hand.dK, widened(gemm.dK), absolute: 1e-5, relative: 1e-4, "dK, \(label)")
                assertClose(hand.dV, widened(gemm.dV), absolute: 1e-5, relative: 1e-4, "dV, \(label)")
            }
        }
    }

    /// Masked scores give probabilities of exactly 0: a query that sees one key returns that
    /// key's value, whatever huge scores the hidden keys would have had.
    func testHiddenKeysContributeNothing() {
        let dims = AttentionDims(batch: 1, queryLength: 3, keyLength: 3, heads: 1, kvHeads: 1, headDim: 16)
        let q = [Float](repeating: 1, count: 48)
        var k = [Float](repeating: 0, count: 48), v = [Float](repeating: 0, count: 48)
        for c in 0..<16 { k[16 + c] = 50; k[32 + c] = 80; v[c] = Float(c); v[16 + c] = 1e6; v[32 + c] = -1e6 }
        let hand = FlashAttentionTests.run(q: q, k: k, v: v, dOut: nil, dims: dims)
        XCTAssertEqual(Array(hand.out[0..<16]), (0..<16).map(Float.init), "row 0 sees key 0 only")
    }
}
