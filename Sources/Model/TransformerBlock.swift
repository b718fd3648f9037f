import Kernels

/// One pre-norm block: `h = x + attention(rmsnorm(x))`, then `y = h + ffn(rmsnorm(h))`.
enum TransformerBlock {
    /// Reads the residual stream entering `layer` and writes the one leaving it, saving every
    /// intermediate in `saved`'s slots for that layer.
    static func forward(layer: Int, weights: LayerWeights, saved: ForwardActivations, dims: AttentionDims,
                        positions: UnsafeBufferPointer<Int>, rope: RoPETable, config: ModelConfig) {
        let (n, c, f) = (saved.rows, config.dModel, config.dFF)
        let qkvWidth = CausalSelfAttention.qkvWidth(dims)
        let input = saved.residual.view(layer * n * c, n * c)
        let middle = saved.afterAttention.slice(layer * n * c, n * c)
        let output = saved.residual.slice((layer + 1) * n * c, n * c)
        let norm1 = saved.norm1.slice(layer * n * c, n * c), norm2 = saved.norm2.slice(layer * n * c, n * c)

        RMSNorm.forward(x: input, weight: weights.ln1, y: norm1, rstd: saved.rstd1.slice(layer * n, n),
                        rows: n, dim: c, epsilon: config.normEps)
        _ = middle.update(fromContentsOf: input)
        CausalSelfAttention.forward(
            x: UnsafeBufferPointer(norm1), qkvWeight: weights.qkv, outputWeight: weights.output,
            positions: positions, rope: rope, y: middle,
            qkv: saved.qkv.slice(layer * n * qkvWidth, n * qkvWidth),
            probs: saved.probs.slice(layer * dims.batch * dims.heads * dims.queryLength * dims.keyLength,
                                     dims.batch * dims.heads * dims.queryLength * dims.keyLength),
            context: saved.context.slice(layer * n * c, n * c), dims: dims, accumulate: true)

        RMSNorm.forward(x: UnsafeBufferPointer(middle), weight: weights.ln2, y: norm2, rstd: saved.rstd2.slice(layer * n, n),
                        rows: n, dim: c, epsilon: config.normEps)
        _ = output.update(fromContentsOf: middle)
        SwiGLU.forward(x: UnsafeBufferPointer(norm2), gateUpWeight: weights.gateUp, downWeight: weights.down, y: output,
                       gateUp: saved.gateUp.slice(layer * n * 2 * f, n * 2 * f), gated: saved.gated.slice(layer * n * f, n * f),
                       rows: n, dim: c, hidden: f, accumulate: true)
    }
}
