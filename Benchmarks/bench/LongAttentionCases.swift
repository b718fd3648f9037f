import Foundation
import Kernels
import Model

/// Causal attention at long contexts, the standard kernel (which keeps `[B, H, T, T]`
/// probabilities) beside the memory-efficient one (which keeps `[B, H, T]` log-sum-exps):
/// forward, and forward + backward, at d_model 512 as 16 heads of 32 and as 8 heads of 64,
/// batch 1. Both are compared with raw sgemm on the standard kernel's causal GEMM shapes (the
/// least GEMM work the math needs; the memory-efficient backward recomputes the scores on top of
/// that). The detail column gives the memory each keeps for backward plus its workspace. The
/// standard kernel stops at 4,096 tokens (at 8,192 its probabilities and scratch take 8 GiB).
/// `flash-gemm` is the memory-efficient kernel on its cblas_sgemm tiles (the fallback for other
/// head sizes and CPUs), beside its hand-vectorised tiles (`flash`).
enum LongAttentionCases {
    static let lengths = [256, 1024, 2048, 4096, 8192]
    static let headDims = [32, 64]

    static func all(quick: Bool) -> [BenchCase] {
        lengths.filter { !quick || $0 <= 1024 }.flatMap { t in
            headDims.flatMap { d in
                [false, true].flatMap { backward in
                    var cases = [attention(length: t, headDim: d, flash: true, backward: backward)]
                    if t <= 4096 { cases.insert(attention(length: t, headDim: d, flash: false, backward: backward), at: 0) }
                    if t == 1024 || t == 4096 { cases.append(attention(length: t, headDim: d, flash: true, backward: backward, gemmTiles: true)) }
                    return cases
                }
            }
        }
    }

    static func mebibytes(_ floats: Int) -> String {
        floats * 4 >= 1 << 20 ? String(format: "%.0f MiB", Double(floats * 4) / 1_048_576) : String(format: "%.0f KiB", Double(floats * 4) / 1024)
    }

    static func attention(length t: Int, headDim d: Int, flash: Bool, backward: Bool, gemmTiles: Bool = false) -> BenchCase {
        let heads = 512 / d
        let shape = BenchShape(context: t, heads: heads, dModel: 512)
        let dims = shape.attentionDims(batch: 1), c = shape.dModel, width = shape.qkvWidth
        let kept = flash ? heads * t : heads * t * t
        let work = flash ? FlashAttention.workspaceCount(keyLength: t, headDim: d) : (backward ? heads * t * t : 0)
        var gemms = shape.attentionGemms(batch: 1)
        if backward { gemms = gemms + shape.attentionBackwardGemms(batch: 1) }
        return BenchCase(
            name: "attention_long/\(flash ? (gemmTiles ? "flash-gemm" : "flash") : "standard")/\(backward ? "fwd+bwd" : "fwd")/d\(d)/T\(t)",
            detail: "H\(heads) d\(d) T\(t): keeps \(mebibytes(kept)) + \(mebibytes(work)) work", gemms: gemms, tokens: t
        ) {
            let memory = BenchMemory()
            let qkv = memory.matrix(rows: t, columns: width, seed: 70), out = memory.matrix(rows: t, columns: c)
            let dOut = memory.matrix(rows: t, columns: c, seed: 71), dQKV = memory.matrix(rows: t, columns: width)
            let (q, k, v) = CausalSelfAttention.split(qkv, dims), (dQ, dK, dV) = CausalSelfAttention.split(dQKV, dims)
            let run: () -> Void
            if flash {
                let logSumExp = memory.vector(kept), workspace = memory.vector(work)
                run = memory.timed {
                    if gemmTiles { FlashAttention.usesHandKernels = false }
                    defer { FlashAttention.usesHandKernels = true }
                    FlashAttention.forward(q: q, k: k, v: v, out: out, logSumExp: logSumExp, workspace: workspace, dims: dims)
                    if backward {
                        FlashAttention.backward(q: q, k: k, v: v, out: out, dOut: dOut, logSumExp: logSumExp,
                                                dQ: dQ, dK: dK, dV: dV, workspace: workspace, dims: dims)
                    }
                }
            } else {
                // The probabilities [H·T, T]; the backward's scratch is as large (none for the forward alone).
                let probs = memory.matrix(rows: heads * t, columns: t), scratch = memory.matrix(rows: backward ? heads * t : 0, columns: t)
                run = memory.timed {
                    ScaledDotProductAttention.forward(q: q, k: k, v: v, out: out, probs: probs, dims: dims, mask: .causal(queryOffset: 0))
                    if backward {
                        ScaledDotProductAttention.backward(q: q, k: k, v: v, probs: probs, dOut: dOut, dQ: dQ, dK: dK, dV: dV,
                                                           scratch: scratch, dims: dims, mask: .causal(queryOffset: 0))
                    }
                }
            }
            run()
            // Another implementation on the same inputs: the outputs agree. The standard kernel
            // for the memory-efficient one up to 4,096 tokens, its GEMM tiles beyond.
            let reference = BenchMemory(), other = reference.matrix(rows: t, columns: c)
            if flash && t <= 4096 {
                ScaledDotProductAttention.forward(q: q, k: k, v: v, out: other, probs: reference.matrix(rows: heads * t, columns: t),
                                                  dims: dims, mask: .causal(queryOffset: 0))
            } else {
                let handKernels = FlashAttention.usesHandKernels
                FlashAttention.usesHandKernels = !flash
                FlashAttention.forward(q: q, k: k, v: v, out: other, logSumExp: reference.vector(heads * t),
                                       workspace: reference.vector(FlashAttention.workspaceCount(keyLength: t, headDim: d)), dims: dims)
                FlashAttention.usesHandKernels = handKernels
            }
            let otherOutput = withExtendedLifetime(reference) { other.array }
            let checked = try check(out.array, otherOutput.map(Double.init), absolute: 1e-5, relative: 1e-4, "output vs another kernel")
            return Prepared(run: run, check: checked)
        }
    }
}

/// The decode step's attention: one query row per head over a KV cache of `T` positions, at
/// SmolLM2's heads (9 query heads over 3 KV heads of 64), the standard kernel and the
/// memory-efficient one; MB/s counts the cache bytes read (keys and values).
enum DecodeAttentionCases {
    static let lengths = [256, 1024, 4096, 8192]

    static func all(quick: Bool) -> [BenchCase] {
        lengths.filter { !quick || $0 <= 1024 }.flatMap { t in [false, true].map { attention(length: t, flash: $0) } }
    }

    static func attention(length t: Int, flash: Bool) -> BenchCase {
        let dims = AttentionDims(batch: 1, queryLength: 1, keyLength: t, heads: 9, kvHeads: 3, headDim: 64)
        let cacheBytes = 2 * t * 3 * 64 * 4
        return BenchCase(name: "attention_decode/\(flash ? "flash" : "standard")/T\(t)",
                         detail: "1 query, H9 over 3 KV heads, d64, cache \(t)", bytes: cacheBytes) {
            let memory = BenchMemory()
            let q = memory.matrix(rows: 1, columns: 9 * 64, seed: 80), out = memory.matrix(rows: 1, columns: 9 * 64)
            let keys = memory.matrix(rows: t, columns: 3 * 64, seed: 81), values = memory.matrix(rows: t, columns: 3 * 64, seed: 82)
            let probs = memory.matrix(rows: 9, columns: t)
            let logSumExp = memory.vector(9), workspace = memory.vector(FlashAttention.workspaceCount(keyLength: t, headDim: 64))
            let run = memory.timed {
                if flash {
                    FlashAttention.forward(q: q, k: keys, v: values, out: out, logSumExp: logSumExp, workspace: workspace, dims: dims, queryOffset: t - 1)
                } else {
                    ScaledDotProductAttention.forward(q: q, k: keys, v: values, out: out, probs: probs, dims: dims, mask: .causal(queryOffset: t - 1))
                }
            }
            run()
            // Against the naive reference on the same inputs.
            let (qs, ks, vs) = (q.array.map(Double.init), keys.array.map(Double.init), values.array.map(Double.init))
            var expected = [Double](repeating: 0, count: 9 * 64)
            for h in 0..<9 {
                let g = h / 3
                var scores = (0..<t).map { j in (0..<64).reduce(0.0) { $0 + qs[h * 64 + $1] * ks[j * 192 + g * 64 + $1] } / 8 }
                let top = scores.max()!
                scores = scores.map { Foundation.exp($0 - top) }
                let total = scores.reduce(0, +)
                for c in 0..<64 { expected[h * 64 + c] = (0..<t).reduce(0.0) { $0 + scores[$1] * vs[$1 * 192 + g * 64 + c] } / total }
            }
            return Prepared(run: run, check: try check(out.array, expected, absolute: 1e-5, relative: 1e-4, "decode attention vs naive"))
        }
    }
}
