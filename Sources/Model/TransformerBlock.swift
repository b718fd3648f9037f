import Kernels

/// One pre-norm block: `h = x + attention(rmsnorm(x))`, then `y = h + ffn(rmsnorm(h))`: the only
/// implementation of the block, used by the full forward, the cached decode step (with a KV
/// cache) and, mirrored, the backward.
enum TransformerBlock {
    /// Reads `buffers.input` and writes `buffers.output`, keeping every intermediate in `buffers`.
    /// The residual buffers may be one and the same (inference updates the stream in place).
    /// With `cache`, keys and values go into it and attention reads every cached position.
    static func forward(weights: LayerTensors, buffers: ForwardActivations.Layer, dims: AttentionDims,
                        positions: UnsafeBufferPointer<Int>, rope: RoPETable, config: ModelConfig, cache: KVCacheSlot? = nil) {
        let (n, c, f) = (dims.batch * dims.queryLength, config.dModel, config.dFF)
        RMSNorm.forward(x: UnsafeBufferPointer(buffers.input), weight: UnsafeBufferPointer(weights.ln1), y: buffers.norm1,
                        rstd: buffers.rstd1, rows: n, dim: c, epsilon: config.normEps)
        copyIfDistinct(buffers.input, to: buffers.afterAttention)
        CausalSelfAttention.forward(
            x: UnsafeBufferPointer(buffers.norm1), qkvWeight: UnsafeBufferPointer(weights.qkv),
            outputWeight: UnsafeBufferPointer(weights.output), positions: positions, rope: rope, y: buffers.afterAttention,
            qkv: buffers.qkv, saved: buffers.attention, context: buffers.context, dims: dims, accumulate: true, cache: cache)

        RMSNorm.forward(x: UnsafeBufferPointer(buffers.afterAttention), weight: UnsafeBufferPointer(weights.ln2), y: buffers.norm2,
                        rstd: buffers.rstd2, rows: n, dim: c, epsilon: config.normEps)
        copyIfDistinct(buffers.afterAttention, to: buffers.output)
        SwiGLU.forward(x: UnsafeBufferPointer(buffers.norm2), gateUpWeight: UnsafeBufferPointer(weights.gateUp),
                       downWeight: UnsafeBufferPointer(weights.down), y: buffers.output,
                       gateUp: buffers.gateUp, gated: buffers.gated, rows: n, dim: c, hidden: f, accumulate: true)
    }

    /// The forward's gradients. On entry `workspace.dResidual` holds ∂L/∂output; on return it
    /// holds ∂L/∂input (both residual paths included). Weight gradients accumulate into `gradients`.
    static func backward(weights: LayerTensors, gradients: LayerTensors, saved: ForwardActivations.Layer,
                         workspace: BackwardWorkspace, dims: AttentionDims, positions: UnsafeBufferPointer<Int>,
                         rope: RoPETable, config: ModelConfig) {
        let (n, c, f) = (dims.batch * dims.queryLength, config.dModel, config.dFF)
        let dResidual = workspace.dResidual.storage, dNorm = workspace.dNorm.storage
        // y = h + ffn(norm2(h)): the FFN's gradient reaches h through norm2; the identity path is already there.
        dNorm.update(repeating: 0)
        SwiGLU.backward(dy: UnsafeBufferPointer(dResidual), x: UnsafeBufferPointer(saved.norm2),
                        gateUpWeight: UnsafeBufferPointer(weights.gateUp), downWeight: UnsafeBufferPointer(weights.down),
                        gateUp: UnsafeBufferPointer(saved.gateUp), gated: UnsafeBufferPointer(saved.gated),
                        dGated: workspace.dGated.storage, dGateUp: workspace.dGateUp.storage, dx: dNorm,
                        dGateUpWeight: gradients.gateUp, dDownWeight: gradients.down, rows: n, dim: c, hidden: f)
        RMSNorm.backward(dy: UnsafeBufferPointer(dNorm), x: UnsafeBufferPointer(saved.afterAttention),
                         weight: UnsafeBufferPointer(weights.ln2), rstd: UnsafeBufferPointer(saved.rstd2),
                         dx: dResidual, dWeight: gradients.ln2, rows: n, dim: c)
        // h = x + attention(norm1(x)), likewise.
        dNorm.update(repeating: 0)
        CausalSelfAttention.backward(
            dy: UnsafeBufferPointer(dResidual), x: UnsafeBufferPointer(saved.norm1),
            qkvWeight: UnsafeBufferPointer(weights.qkv), outputWeight: UnsafeBufferPointer(weights.output),
            positions: positions, rope: rope, qkv: UnsafeBufferPointer(saved.qkv), saved: saved.attention,
            context: UnsafeBufferPointer(saved.context), dContext: workspace.dContext.storage, dQKV: workspace.dQKV.storage,
            scratch: workspace.scratch.storage, dx: dNorm, dQKVWeight: gradients.qkv, dOutputWeight: gradients.output, dims: dims)
        RMSNorm.backward(dy: UnsafeBufferPointer(dNorm), x: UnsafeBufferPointer(saved.input),
                         weight: UnsafeBufferPointer(weights.ln1), rstd: UnsafeBufferPointer(saved.rstd1),
                         dx: dResidual, dWeight: gradients.ln1, rows: n, dim: c)
    }

    /// The residual adds accumulate into `target`, which must start as `source`.
    private static func copyIfDistinct(_ source: UnsafeMutableBufferPointer<Float>, to target: UnsafeMutableBufferPointer<Float>) {
        if source.baseAddress != target.baseAddress { _ = target.update(fromContentsOf: source) }
    }
}
