import Kernels

/// The buffers backward writes and then discards, for one (batch, length): allocated once by a
/// ``TrainingSession`` and overwritten at every step. Gradients themselves live elsewhere.
final class BackwardWorkspace {
    /// ∂L/∂residual stream [B·T, C], carried from the last layer down to the embedding.
    let dResidual: MatrixView
    /// ∂L/∂(a norm's output) [B·T, C].
    let dNorm: MatrixView
    /// ∂L/∂(attention output before its projection) [B·T, H·d].
    let dContext: MatrixView
    /// ∂L/∂(a post-normed branch before its norm) [B·T, C] (empty without post-norms).
    let dBranch: MatrixView
    /// ∂L/∂(q | k before QK-norm) [B·T, (H + Hkv)·d], nil without QK-norm.
    let dQKRaw: MatrixView?
    /// ∂L/∂(fused q | k | v) [B·T, qkvWidth].
    let dQKV: MatrixView
    /// The standard attention kernel's ∂L/∂scores [B·H·T, T] (empty for the memory-efficient
    /// kernel, which works in tiles).
    let scratch: MatrixView
    /// SwiGLU's ∂L/∂gated [B·T, d_ff] and ∂L/∂(gate | up) [B·T, 2·d_ff].
    let dGated: MatrixView, dGateUp: MatrixView

    /// The memory behind the views.
    private let storage: [TensorBuffer]

    init(config: ModelConfig, batch: Int, length: Int, kernel: AttentionKernel) {
        let n = batch * length
        var buffers: [TensorBuffer] = []
        func matrix(_ rows: Int, _ columns: Int) -> MatrixView {
            let buffer = TensorBuffer(count: rows * columns)
            buffers.append(buffer)
            return buffer.matrix(rows: rows, columns: columns)
        }
        dResidual = matrix(n, config.dModel)
        dNorm = matrix(n, config.dModel)
        dContext = matrix(n, config.attentionWidth)
        dBranch = matrix(config.architecture.postNorms ? n : 0, config.dModel)
        dQKRaw = config.architecture.qkNorm ? matrix(n, (config.numHeads + config.numKVHeads) * config.headDim) : nil
        dQKV = matrix(n, config.qkvWidth)
        scratch = kernel == .standard ? matrix(batch * config.numHeads * length, length) : matrix(0, length)
        dGated = matrix(n, config.dFF)
        dGateUp = matrix(n, 2 * config.dFF)
        storage = buffers
    }
}
