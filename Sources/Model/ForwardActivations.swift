import Kernels

/// Everything a full forward pass over `[batch, length]` tokens computes and backward will need,
/// preallocated once per (batch, length) and reused.
final class ForwardActivations {
    let batch: Int
    let length: Int
    var rows: Int { batch * length }

    /// Residual stream entering each layer and leaving the last: [L + 1][B·T, C].
    let residual: TensorBuffer
    /// Residual after each layer's attention: [L][B·T, C].
    let afterAttention: TensorBuffer
    /// RMSNorm outputs and saved 1/rms, per layer: [L][B·T, C] and [L][B·T].
    let norm1: TensorBuffer, rstd1: TensorBuffer, norm2: TensorBuffer, rstd2: TensorBuffer
    /// Fused QKV after RoPE: [L][B·T, qkvWidth]; attention weights: [L][B, H, T, T];
    /// attention output before its projection: [L][B·T, C].
    let qkv: TensorBuffer, probs: TensorBuffer, context: TensorBuffer
    /// SwiGLU gate/up projections [L][B·T, 2·d_ff] and gated hidden [L][B·T, d_ff].
    let gateUp: TensorBuffer, gated: TensorBuffer
    /// Final norm [B·T, C], its 1/rms [B·T], logits [B·T, V].
    let normFinal: TensorBuffer, rstdFinal: TensorBuffer, logits: TensorBuffer
    /// Position of every row (t for row b·T + t), for RoPE.
    let positions: [Int]

    init(config: ModelConfig, batch: Int, length: Int) {
        self.batch = batch
        self.length = length
        let (n, c, layers) = (batch * length, config.dModel, config.numLayers)
        let qkvWidth = (config.numHeads + 2 * config.numKVHeads) * config.headDim
        residual = TensorBuffer(count: (layers + 1) * n * c)
        afterAttention = TensorBuffer(count: layers * n * c)
        norm1 = TensorBuffer(count: layers * n * c)
        rstd1 = TensorBuffer(count: layers * n)
        norm2 = TensorBuffer(count: layers * n * c)
        rstd2 = TensorBuffer(count: layers * n)
        qkv = TensorBuffer(count: layers * n * qkvWidth)
        probs = TensorBuffer(count: layers * batch * config.numHeads * length * length)
        context = TensorBuffer(count: layers * n * c)
        gateUp = TensorBuffer(count: layers * n * 2 * config.dFF)
        gated = TensorBuffer(count: layers * n * config.dFF)
        normFinal = TensorBuffer(count: n * c)
        rstdFinal = TensorBuffer(count: n)
        logits = TensorBuffer(count: n * config.vocabSize)
        positions = (0..<n).map { $0 % length }
    }
}
