import Kernels

/// One pre-norm block: `h = x + attention(rmsnorm(x))`, then `y = h + ffn(rmsnorm(h))`.
enum TransformerBlock {
    /// Reads `buffers.input` and writes `buffers.output`, keeping every intermediate in `buffers`.
    /// The residual buffers may be one and the same (inference updates the stream in place).
    static func forward(weights: LayerWeights, buffers: ForwardActivations.Layer, dims: AttentionDims,
                        positions: UnsafeBufferPointer<Int>, rope: RoPETable, config: ModelConfig) {
        let (n, c, f) = (dims.batch * dims.queryLength, config.dModel, config.dFF)
        RMSNorm.forward(x: UnsafeBufferPointer(buffers.input), weight: weights.ln1, y: buffers.norm1, rstd: buffers.rstd1,
                        rows: n, dim: c, epsilon: config.normEps)
        copyIfDistinct(buffers.input, to: buffers.afterAttention)
        CausalSelfAttention.forward(
            x: UnsafeBufferPointer(buffers.norm1), qkvWeight: weights.qkv, outputWeight: weights.output,
            positions: positions, rope: rope, y: buffers.afterAttention,
            qkv: buffers.qkv, probs: buffers.probs, context: buffers.context, dims: dims, accumulate: true)

        RMSNorm.forward(x: UnsafeBufferPointer(buffers.afterAttention), weight: weights.ln2, y: buffers.norm2, rstd: buffers.rstd2,
                        rows: n, dim: c, epsilon: config.normEps)
        copyIfDistinct(buffers.afterAttention, to: buffers.output)
        SwiGLU.forward(x: UnsafeBufferPointer(buffers.norm2), gateUpWeight: weights.gateUp, downWeight: weights.down, y: buffers.output,
                       gateUp: buffers.gateUp, gated: buffers.gated, rows: n, dim: c, hidden: f, accumulate: true)
    }

    /// The residual adds accumulate into `target`, which must start as `source`.
    private static func copyIfDistinct(_ source: UnsafeMutableBufferPointer<Float>, to target: UnsafeMutableBufferPointer<Float>) {
        if source.baseAddress != target.baseAddress { _ = target.update(fromContentsOf: source) }
    }
}
