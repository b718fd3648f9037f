import Kernels

/// One pre-norm block: `h = x + attention(rmsnorm(x))`, then `y = h + ffn(rmsnorm(h))`: the only
/// implementation of the block, used by the full forward, the cached decode step (with a KV
/// cache) and, mirrored, the backward.
public enum TransformerBlock {
    /// Reads `a.input` and writes `a.output`, keeping every intermediate in `a`. With `cache`,
    /// keys and values go into it and attention reads every cached position. `rope` nil runs
    /// attention without rotary positions.
    public static func forward(weights w: BlockTensors, activations a: BlockActivations, dims: AttentionDims,
                               rope: RotaryPositions?, epsilon: Float, cache: KVCacheSlot? = nil) {
        forward(using: BlockWeights(w), activations: a, dims: dims, rope: rope, epsilon: epsilon, cache: cache.map { KVCacheRows.sequence($0) })
    }

    /// The same with weights in any ``/Kernels/LinearWeight`` form (block-quantized matrices for
    /// inference), and the cache of one sequence or of one row per sequence (a batched decode step).
    public static func forward(using w: BlockWeights, activations a: BlockActivations, dims: AttentionDims,
                               rope: RotaryPositions?, epsilon: Float, cache: KVCacheRows? = nil) {
        RMSNorm.forward(x: a.input, weight: w.ln1, y: a.norm1, rstd: a.rstd1, epsilon: epsilon)
        a.afterAttention.copy(from: a.input)
        CausalSelfAttention.forward(x: a.norm1, qkvWeight: w.qkv, outputWeight: w.output, rope: rope, y: a.afterAttention,
                                    qkv: a.qkv, saved: a.attention, context: a.context, dims: dims, accumulate: true, cache: cache)
        RMSNorm.forward(x: a.afterAttention, weight: w.ln2, y: a.norm2, rstd: a.rstd2, epsilon: epsilon)
        a.output.copy(from: a.afterAttention)
        SwiGLU.forward(x: a.norm2, gateUpWeight: w.gateUp, downWeight: w.down, y: a.output,
                       gateUp: a.gateUp, gated: a.gated, accumulate: true)
    }

    /// The forward's gradients. On entry `workspace.dResidual` holds ∂L/∂output; on return it
    /// holds ∂L/∂input (both residual paths included). Weight gradients accumulate into `gradients`.
    static func backward(weights w: BlockTensors, gradients g: BlockTensors, saved a: BlockActivations,
                         workspace: BackwardWorkspace, dims: AttentionDims, rope: RotaryPositions?) {
        let (dResidual, dNorm) = (workspace.dResidual, workspace.dNorm)
        // y = h + ffn(norm2(h)): the FFN's gradient reaches h through norm2; the identity path is already there.
        dNorm.fill(0)
        SwiGLU.backward(dy: dResidual, x: a.norm2, gateUpWeight: w.gateUp, downWeight: w.down, gateUp: a.gateUp, gated: a.gated,
                        dGated: workspace.dGated, dGateUp: workspace.dGateUp, dx: dNorm,
                        dGateUpWeight: g.gateUp, dDownWeight: g.down)
        RMSNorm.backward(dy: dNorm, x: a.afterAttention, weight: w.ln2, rstd: a.rstd2, dx: dResidual, dWeight: g.ln2)
        // h = x + attention(norm1(x)), likewise.
        dNorm.fill(0)
        CausalSelfAttention.backward(dy: dResidual, x: a.norm1, qkvWeight: w.qkv, outputWeight: w.output, rope: rope,
                                     qkv: a.qkv, saved: a.attention, context: a.context,
                                     dContext: workspace.dContext, dQKV: workspace.dQKV, scratch: workspace.scratch,
                                     dx: dNorm, dQKVWeight: g.qkv, dOutputWeight: g.output, dims: dims)
        RMSNorm.backward(dy: dNorm, x: a.input, weight: w.ln1, rstd: a.rstd1, dx: dResidual, dWeight: g.ln1)
    }
}
