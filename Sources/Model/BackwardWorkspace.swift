import Kernels

/// The buffers backward writes and then discards, for one (batch, length): allocated once by a
/// ``TrainingSession`` and overwritten at every step. Gradients themselves live elsewhere.
final class BackwardWorkspace {
    /// ∂L/∂residual stream [B·T, C], carried from the last layer down to the embedding.
    let dResidual: TensorBuffer
    /// ∂L/∂(a norm's output) [B·T, C].
    let dNorm: TensorBuffer
    /// ∂L/∂(attention output before its projection) [B·T, C].
    let dContext: TensorBuffer
    /// ∂L/∂(fused q | k | v) [B·T, qkvWidth].
    let dQKV: TensorBuffer
    /// The standard attention kernel's ∂L/∂scores [B, H, T, T] (empty for the memory-efficient
    /// kernel, which works in tiles).
    let scratch: TensorBuffer
    /// SwiGLU's ∂L/∂gated [B·T, d_ff] and ∂L/∂(gate | up) [B·T, 2·d_ff].
    let dGated: TensorBuffer, dGateUp: TensorBuffer

    init(config: ModelConfig, batch: Int, length: Int, kernel: AttentionKernel) {
        let n = batch * length
        dResidual = TensorBuffer(count: n * config.dModel)
        dNorm = TensorBuffer(count: n * config.dModel)
        dContext = TensorBuffer(count: n * config.dModel)
        dQKV = TensorBuffer(count: n * config.qkvWidth)
        scratch = TensorBuffer(count: kernel == .standard ? batch * config.numHeads * length * length : 0)
        dGated = TensorBuffer(count: n * config.dFF)
        dGateUp = TensorBuffer(count: n * 2 * config.dFF)
    }
}
