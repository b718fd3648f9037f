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
            let qkv = TensorBuffer(t * width, seed: 70), out = TensorBuffer(count: t * c), dOut = TensorBuffer(t * c, seed: 71)
            let dQKV = TensorBuffer(count: t * width)
            let saved = TensorBuffer(count: kept), workspace = TensorBuffer(count: max(work, 1))
            let fused = HeadLayout(rowStride: width, batchStride: t * width), output = HeadLayout(rowStride: c, batchStride: t * c)
            let (q, k, v) = (qkv.pointer, qkv.pointer + c, qkv.pointer + 2 * c)
            let (dQ, dK, dV) = (dQKV.pointer, dQKV.pointer + c, dQKV.pointer + 2 * c)
            let run = {
                // The closure holds the buffers (the pointers alone would not keep them alive).
                withExtendedLifetime((qkv, dQKV)) {}
                if flash {
                    FlashAttention.forward(q: q, queryLayout: fused, k: k, v: v, keyLayout: fused, out: out.pointer, outputLayout: output,
                                           logSumExp: saved.mutable, workspace: workspace.mutable, dims: dims)
                    if backward {
                        FlashAttention.backward(q: q, queryLayout: fused, k: k, v: v, keyLayout: fused, out: out.pointer, dOut: dOut.pointer,
                                                outputLayout: output, logSumExp: saved.readOnly, dQ: dQ, dK: dK, dV: dV,
                                                workspace: workspace.mutable, dims: dims)
                    }
                } else {
                    ScaledDotProductAttention.forward(q: q, queryLayout: fused, k: k, v: v, keyLayout: fused, out: out.pointer,
                                                      outputLayout: output, probs: saved.mutable, dims: dims, mask: .causal(queryOffset: 0))
                    if backward {
                        ScaledDotProductAttention.backward(q: q, queryLayout: fused, k: k, v: v, keyLayout: fused, probs: saved.readOnly,
                                                           dOut: dOut.pointer, outputLayout: output, dQ: dQ, dK: dK, dV: dV,
                                                           scratch: workspace.mutable, dims: dims, mask: .causal(queryOffset: 0))
                    }
                }
            }
            run()
            // The other kernel on the same inputs: outputs agree.
            let other = TensorBuffer(count: t * c)
            if flash {
                let probs = TensorBuffer(count: 16 * t * t)
                ScaledDotProductAttention.forward(q: q, queryLayout: fused, k: k, v: v, keyLayout: fused, out: other.pointer,
                                                  outputLayout: output, probs: probs.mutable, dims: dims, mask: .causal(queryOffset: 0))
            } else {
                let lse = TensorBuffer(count: 16 * t), flashWork = TensorBuffer(count: FlashAttention.workspaceCount())
                FlashAttention.forward(q: q, queryLayout: fused, k: k, v: v, keyLayout: fused, out: other.pointer, outputLayout: output,
                                       logSumExp: lse.mutable, workspace: flashWork.mutable, dims: dims)
            }
            let checked = try check(out.array, other.array.map(Double.init), absolute: 1e-5, relative: 1e-4, "output vs the other kernel")
            return Prepared(run: run, check: checked)
        }
    }
}
