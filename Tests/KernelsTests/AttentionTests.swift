import Kernels
import ReferenceKernels
import TestSupport
import XCTest

final class AttentionTests: XCTestCase {
    /// Per (batch, head) slices of the kernel's [B, T, H·d] layout, for the single-head reference.
    func head(_ x: [Float], batch b: Int, length: Int, heads: Int, head h: Int, headDim d: Int) -> [Double] {
        headSlice(x, batch: b, rows: length, width: heads * d, head: h, headDim: d)
    }

    func checkAgainstReference(dims: AttentionDims, mask: [Bool]?, causalOffset: Int?, seed: UInt64, margin: Int = 0) {
        var rng = SeededGenerator(seed: seed)
        let (tq, tk, d) = (dims.queryLength, dims.keyLength, dims.headDim)
        let q = rng.uniform(dims.batch * tq * dims.heads * d, scale: 2)
        let k = rng.uniform(dims.batch * tk * dims.kvHeads * d, scale: 2)
        let v = rng.uniform(dims.batch * tk * dims.kvHeads * d)
        let (out, probs) = Run.attention(q: q, k: k, v: v, dims: dims, mask: mask, causalOffset: causalOffset, margin: margin)
        var allowed = mask
        if let causalOffset { allowed = (0..<(tq * tk)).map { $0 % tk <= causalOffset + $0 / tk } }
        for b in 0..<dims.batch {
            for h in 0..<dims.heads {
                let g = h / (dims.heads / dims.kvHeads)
                let expected = Reference.attention(
                    q: head(q, batch: b, length: tq, heads: dims.heads, head: h, headDim: d),
                    k: head(k, batch: b, length: tk, heads: dims.kvHeads, head: g, headDim: d),
                    v: head(v, batch: b, length: tk, heads: dims.kvHeads, head: g, headDim: d),
                    queries: tq, keys: tk, headDim: d, allowed: allowed)
                assertClose(head(out, batch: b, length: tq, heads: dims.heads, head: h, headDim: d), expected,
                            absolute: reductionTolerance(tk + d, scale: 2), relative: 1e-5, "attention \(dims) margin \(margin) batch \(b) head \(h)")
                if let allowed {
                    let p = probs[((b * dims.heads + h) * tq * tk)..<((b * dims.heads + h + 1) * tq * tk)]
                    for (index, weight) in zip(allowed, p) where !index {
                        XCTAssertEqual(weight, 0, "masked positions get no weight")
                    }
                }
            }
        }
    }

    func testUnmaskedAcrossShapes() {
        for (batch, length, heads, d) in [(1, 1, 1, 4), (2, 7, 3, 8), (3, 13, 8, 16), (1, 33, 4, 32)] {
            checkAgainstReference(dims: AttentionDims(batch: batch, queryLength: length, keyLength: length, heads: heads, kvHeads: heads, headDim: d),
                                  mask: nil, causalOffset: nil, seed: UInt64(length))
        }
    }

    func testCausalIncludingBlockBoundariesAndCacheOffsets() {
        // Lengths straddle the 64-row causal block; offsets stand for cached prefixes.
        for (batch, tq, tk, heads, offset) in [(1, 1, 1, 1, 0), (2, 13, 13, 2, 0), (1, 70, 70, 3, 0), (2, 130, 130, 1, 0),
                                               (1, 1, 9, 4, 8), (2, 5, 40, 2, 35), (1, 67, 100, 2, 33)] {
            checkAgainstReference(dims: AttentionDims(batch: batch, queryLength: tq, keyLength: tk, heads: heads, kvHeads: heads, headDim: 8),
                                  mask: nil, causalOffset: offset, seed: UInt64(tq * 31 + tk))
        }
    }

    func testBooleanMaskIncludingAFullyMaskedRow() {
        var rng = SeededGenerator(seed: 40)
        let (tq, tk) = (6, 11)
        var mask = (0..<(tq * tk)).map { _ in Bool.random(using: &rng) }
        for j in 0..<tk { mask[2 * tk + j] = false }  // row 2 sees nothing
        let dims = AttentionDims(batch: 2, queryLength: tq, keyLength: tk, heads: 2, kvHeads: 2, headDim: 8)
        checkAgainstReference(dims: dims, mask: mask, causalOffset: nil, seed: 41)
        var g = SeededGenerator(seed: 42)
        let (out, _) = Run.attention(q: g.uniform(2 * tq * 16), k: g.uniform(2 * tk * 16), v: g.uniform(2 * tk * 16), dims: dims, mask: mask)
        XCTAssertTrue(out.allSatisfy { !$0.isNaN }, "a fully masked row yields zeros, not NaN")
        XCTAssertEqual(Array(out[(2 * 16)..<(3 * 16)]), [Float](repeating: 0, count: 16))
    }

    /// A decode step (one query over every cached key: the grouped kernels of
    /// `decode_attention.c`) at awkward cache lengths around its blocks of 8 and 32 keys, head
    /// sizes from 8 to 128, groups of 1 to 8 query heads, strided operands; and the GEMM path
    /// where those kernels do not apply (a head size not a multiple of 8, one too wide).
    func testDecodeStepOverTheCache() {
        for (tk, heads, kvHeads, d) in [(1, 1, 1, 8), (7, 3, 1, 64), (8, 9, 3, 64), (9, 4, 2, 16), (33, 8, 1, 128), (300, 9, 3, 64),
                                        (65, 2, 2, 72), (17, 2, 1, 12), (20, 2, 2, 136)] {
            let dims = AttentionDims(batch: 2, queryLength: 1, keyLength: tk, heads: heads, kvHeads: kvHeads, headDim: d)
            checkAgainstReference(dims: dims, mask: nil, causalOffset: tk - 1, seed: UInt64(tk * 7 + d), margin: 3)
            checkAgainstReference(dims: dims, mask: nil, causalOffset: nil, seed: UInt64(tk * 5 + d))
        }
    }

    func testGroupedQueryAttention() {
        for (heads, kvHeads) in [(4, 2), (8, 1), (6, 3)] {
            checkAgainstReference(dims: AttentionDims(batch: 2, queryLength: 9, keyLength: 9, heads: heads, kvHeads: kvHeads, headDim: 8),
                                  mask: nil, causalOffset: 0, seed: UInt64(heads * 10 + kvHeads))
        }
    }

    /// Operands as strided views: each the middle columns of rows wider on both sides (NaN
    /// there), as the heads of a fused projection or a cache's rows are passed. Unmasked, causal
    /// with a cache offset and across the 64-row block, a Boolean mask, grouped-query heads.
    func testStridedOperandsInsideWiderRows() {
        checkAgainstReference(dims: AttentionDims(batch: 2, queryLength: 7, keyLength: 7, heads: 3, kvHeads: 3, headDim: 8),
                              mask: nil, causalOffset: nil, seed: 43, margin: 3)
        checkAgainstReference(dims: AttentionDims(batch: 2, queryLength: 67, keyLength: 100, heads: 4, kvHeads: 2, headDim: 8),
                              mask: nil, causalOffset: 33, seed: 44, margin: 5)
        checkAgainstReference(dims: AttentionDims(batch: 1, queryLength: 1, keyLength: 13, heads: 6, kvHeads: 3, headDim: 4),
                              mask: nil, causalOffset: 12, seed: 45, margin: 1)
        var rng = SeededGenerator(seed: 46)
        let mask = (0..<(5 * 9)).map { _ in Bool.random(using: &rng) }
        checkAgainstReference(dims: AttentionDims(batch: 2, queryLength: 5, keyLength: 9, heads: 2, kvHeads: 1, headDim: 8),
                              mask: mask, causalOffset: nil, seed: 47, margin: 2)
    }
}
