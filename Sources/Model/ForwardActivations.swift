import Kernels

/// The buffers a full forward pass over `[batch, length]` tokens writes, allocated once per
/// (batch, length, mode) and reused.
///
/// `.training` keeps every layer's intermediates (what backward reads). `.inference` keeps one
/// layer's worth, reused by every layer, and one residual stream updated in place
/// (`x += attention(norm(x))`, `x += ffn(norm(x))`): a quarter of the memory at four layers,
/// no residual copies, and a working set that stays in cache.
final class ForwardActivations {
    enum Mode { case training, inference }

    /// One layer's views.
    struct Layer {
        /// Residual stream entering and leaving the block: [B·T, C].
        let input: UnsafeMutableBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>
        /// Residual after attention: [B·T, C].
        let afterAttention: UnsafeMutableBufferPointer<Float>
        /// RMSNorm outputs [B·T, C] and saved 1/rms [B·T].
        let norm1: UnsafeMutableBufferPointer<Float>, rstd1: UnsafeMutableBufferPointer<Float>
        let norm2: UnsafeMutableBufferPointer<Float>, rstd2: UnsafeMutableBufferPointer<Float>
        /// Fused QKV after RoPE [B·T, qkvWidth]; what attention keeps for backward (weights
        /// [B, H, T, T], or log-sum-exps [B, H, T] and a workspace); attention output before its
        /// projection [B·T, C].
        let qkv: UnsafeMutableBufferPointer<Float>, attention: AttentionMemory, context: UnsafeMutableBufferPointer<Float>
        /// SwiGLU gate/up projections [B·T, 2·d_ff] and gated hidden [B·T, d_ff].
        let gateUp: UnsafeMutableBufferPointer<Float>, gated: UnsafeMutableBufferPointer<Float>
    }

    let mode: Mode
    let kernel: AttentionKernel
    let batch: Int
    let length: Int
    var rows: Int { batch * length }
    /// Final norm [B·T, C], its 1/rms [B·T], logits [B·T, V].
    let normFinal: TensorBuffer, rstdFinal: TensorBuffer, logits: TensorBuffer
    /// Position of every row (t for row b·T + t), for RoPE.
    let positions: [Int]

    private let residual: TensorBuffer, afterAttention: TensorBuffer
    private let norm1: TensorBuffer, rstd1: TensorBuffer, norm2: TensorBuffer, rstd2: TensorBuffer
    private let qkv: TensorBuffer, attentionSaved: TensorBuffer, attentionWorkspace: TensorBuffer
    private let context: TensorBuffer, gateUp: TensorBuffer, gated: TensorBuffer
    private let (c, f, qkvWidth, savedPerLayer, layerSlots, residualSlots): (Int, Int, Int, Int, Int, Int)

    init(config: ModelConfig, batch: Int, length: Int, mode: Mode, kernel: AttentionKernel) {
        self.mode = mode
        self.kernel = kernel
        self.batch = batch
        self.length = length
        let n = batch * length
        c = config.dModel
        f = config.dFF
        qkvWidth = config.qkvWidth
        savedPerLayer = batch * config.numHeads * length * (kernel == .standard ? length : 1)
        layerSlots = mode == .training ? config.numLayers : 1
        residualSlots = mode == .training ? config.numLayers + 1 : 1
        residual = TensorBuffer(count: residualSlots * n * c)
        // In inference the residual after attention is the stream itself.
        afterAttention = mode == .training ? TensorBuffer(count: layerSlots * n * c) : residual
        norm1 = TensorBuffer(count: layerSlots * n * c)
        rstd1 = TensorBuffer(count: layerSlots * n)
        norm2 = TensorBuffer(count: layerSlots * n * c)
        rstd2 = TensorBuffer(count: layerSlots * n)
        qkv = TensorBuffer(count: layerSlots * n * qkvWidth)
        attentionSaved = TensorBuffer(count: layerSlots * savedPerLayer)
        attentionWorkspace = TensorBuffer(count: kernel == .standard ? 0 : FlashAttention.workspaceCount())
        context = TensorBuffer(count: layerSlots * n * c)
        gateUp = TensorBuffer(count: layerSlots * n * 2 * f)
        gated = TensorBuffer(count: layerSlots * n * f)
        normFinal = TensorBuffer(count: n * c)
        rstdFinal = TensorBuffer(count: n)
        logits = TensorBuffer(count: n * config.vocabSize)
        positions = (0..<n).map { $0 % length }
    }

    /// The residual stream entering layer `index` (`index == numLayers`: leaving the last).
    func residual(_ index: Int) -> UnsafeMutableBufferPointer<Float> {
        residual.slice((index % residualSlots) * rows * c, rows * c)
    }

    func layer(_ index: Int) -> Layer {
        let slot = index % layerSlots, n = rows
        return Layer(
            input: residual(index), output: residual(index + 1),
            afterAttention: afterAttention.slice(slot * n * c, n * c),
            norm1: norm1.slice(slot * n * c, n * c), rstd1: rstd1.slice(slot * n, n),
            norm2: norm2.slice(slot * n * c, n * c), rstd2: rstd2.slice(slot * n, n),
            qkv: qkv.slice(slot * n * qkvWidth, n * qkvWidth), attention: attentionMemory(slot),
            context: context.slice(slot * n * c, n * c),
            gateUp: gateUp.slice(slot * n * 2 * f, n * 2 * f), gated: gated.slice(slot * n * f, n * f))
    }

    private func attentionMemory(_ slot: Int) -> AttentionMemory {
        let saved = attentionSaved.slice(slot * savedPerLayer, savedPerLayer)
        return kernel == .standard ? .probabilities(saved) : .logSumExp(saved, workspace: attentionWorkspace.storage)
    }
}
