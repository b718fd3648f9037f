import Foundation
import Kernels

/// Causal attention at long contexts, the standard kernel (which keeps `[B, H, T, T]`
/// probabilities) beside the memory-efficient one (which keeps `[B, H, T]` log-sum-exps):
/// forward, and forward + backward, at d_model 512 with 16 heads, batch 1. Both are compared
/// with raw sgemm on the standard kernel's causal GEMM shapes (the least GEMM work the math
/// needs; the memory-efficient backward recomputes the scores on top of that). The detail
/// column gives the memory each keeps for backward plus its workspace.
enum LongAttentionCases {
    static let lengths = [256, 1024, 2048, 4096]

    static func all(quick: Bool) -> [BenchCase] {
        lengths.filter { !quick || $0 <= 1024 }.flatMap { t in
            [false, true].flatMap { backward in [false, true].map { flash in attention(length: t, flash: flash, backward: backward) } }
        }
    }

    static func mebibytes(_ floats: Int) -> String {
        floats * 4 >= 1 << 20 ? String(format: "%.0f MiB", Double(floats * 4) / 1_048_576) : String(format: "%.0f KiB", Double(floats * 4) / 1024)
    }

    static func attention(length t: Int, flash: Bool, backward: Bool) -> BenchCase {
        let shape = BenchShape(context: t, heads: 16, dModel: 512)
        let dims = shape.attentionDims(batch: 1), c = shape.dModel, width = shape.qkvWidth
        let kept = flash ? 16 * t : 16 * t * t
        let work = flash ? FlashAttention.workspaceCount() : (backward ? 16 * t * t : 0)
        var gemms = shape.attentionGemms(batch: 1)
        if backward { gemms = gemms + shape.attentionBackwardGemms(batch: 1) }
        return BenchCase(
            name: "attention_long/\(flash ? "flash" : "standard")/\(backward ? "fwd+bwd" : "fwd")/T\(t)",
            detail: "H16 d32 T\(t): keeps \(mebibytes(kept)) + \(mebibytes(work)) work", gemms: gemms, tokens: t
        ) {
            let memory = BenchMemory()
            let qkv = memory.matrix(rows: t, columns: width, seed: 70), out = memory.matrix(rows: t, columns: c)
            let dOut = memory.matrix(rows: t, columns: c, seed: 71), dQKV = memory.matrix(rows: t, columns: width)
            let (q, k, v) = CausalSelfAttention.split(qkv, dims), (dQ, dK, dV) = CausalSelfAttention.split(dQKV, dims)
            let run: () -> Void
            if flash {
                let logSumExp = memory.vector(kept), workspace = memory.vector(work)
                run = memory.timed {
                    FlashAttention.forward(q: q, k: k, v: v, out: out, logSumExp: logSumExp, workspace: workspace, dims: dims)
                    if backward {
                        FlashAttention.backward(q: q, k: k, v: v, out: out, dOut: dOut, logSumExp: logSumExp,
                                                dQ: dQ, dK: dK, dV: dV, workspace: workspace, dims: dims)
                    }
                }
            } else {
                // The probabilities [H·T, T]; the backward's scratch is as large (none for the forward alone).
                let probs = memory.matrix(rows: 16 * t, columns: t), scratch = memory.matrix(rows: backward ? 16 * t : 0, columns: t)
                run = memory.timed {
                    ScaledDotProductAttention.forward(q: q, k: k, v: v, out: out, probs: probs, dims: dims, mask: .causal(queryOffset: 0))
                    if backward {
                        ScaledDotProductAttention.backward(q: q, k: k, v: v, probs: probs, dOut: dOut, dQ: dQ, dK: dK, dV: dV,
                                                           scratch: scratch, dims: dims, mask: .causal(queryOffset: 0))
                    }
                }
            }
            run()
            // The other kernel on the same inputs: outputs agree.
            let reference = BenchMemory(), other = reference.matrix(rows: t, columns: c)
            if flash {
                ScaledDotProductAttention.forward(q: q, k: k, v: v, out: other, probs: reference.matrix(rows: 16 * t, columns: t),
                                                  dims: dims, mask: .causal(queryOffset: 0))
            } else {
                FlashAttention.forward(q: q, k: k, v: v, out: other, logSumExp: reference.vector(16 * t),
                                       workspace: reference.vector(FlashAttention.workspaceCount()), dims: dims)
            }
            let otherOutput = withExtendedLifetime(reference) { other.array }
            let checked = try check(out.array, otherOutput.map(Double.init), absolute: 1e-5, relative: 1e-4, "output vs the other kernel")
            return Prepared(run: run, check: checked)
        }
    }
}
