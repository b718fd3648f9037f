import Kernels

/// What one block reads and writes in a forward pass, and what its backward reads again: views
/// over `[B·T, ·]` rows. The residual views may be one and the same (inference updates the
/// stream in place).
public struct BlockActivations {
    /// Residual stream entering and leaving the block: [B·T, C].
    public let input: MatrixView, output: MatrixView
    /// Residual after attention: [B·T, C].
    public let afterAttention: MatrixView
    /// RMSNorm outputs [B·T, C] and saved 1/rms [B·T].
    public let norm1: MatrixView, rstd1: UnsafeMutableBufferPointer<Float>
    public let norm2: MatrixView, rstd2: UnsafeMutableBufferPointer<Float>
    /// Fused QKV after RoPE [B·T, qkvWidth]; what attention keeps for backward (probabilities
    /// [B·H·T, Tk], or log-sum-exps [B·H·T] and a workspace); attention output before its
    /// projection [B·T, C].
    public let qkv: MatrixView, attention: AttentionMemory, context: MatrixView
    /// SwiGLU gate/up projections [B·T, 2·d_ff] and gated hidden [B·T, d_ff].
    public let gateUp: MatrixView, gated: MatrixView
    /// QK-norm's memory, when the architecture has it.
    public let qkNorm: QKNormMemory?
    /// The post-norms' memory (attention branch, feed-forward branch), when the architecture has them.
    public let postAttention: PostNormMemory?, postFeedForward: PostNormMemory?

    public init(input: MatrixView, output: MatrixView, afterAttention: MatrixView,
                norm1: MatrixView, rstd1: UnsafeMutableBufferPointer<Float>, norm2: MatrixView, rstd2: UnsafeMutableBufferPointer<Float>,
                qkv: MatrixView, attention: AttentionMemory, context: MatrixView, gateUp: MatrixView, gated: MatrixView,
                qkNorm: QKNormMemory? = nil, postAttention: PostNormMemory? = nil, postFeedForward: PostNormMemory? = nil) {
        (self.input, self.output, self.afterAttention) = (input, output, afterAttention)
        (self.norm1, self.rstd1, self.norm2, self.rstd2) = (norm1, rstd1, norm2, rstd2)
        (self.qkv, self.attention, self.context, self.gateUp, self.gated) = (qkv, attention, context, gateUp, gated)
        (self.qkNorm, self.postAttention, self.postFeedForward) = (qkNorm, postAttention, postFeedForward)
    }
}

/// A branch normed before it joins the residual stream: its output [B·T, C] before the norm,
/// after it, and the norm's 1/rms [B·T].
public struct PostNormMemory {
    public let raw: MatrixView, normed: MatrixView, rstd: UnsafeMutableBufferPointer<Float>

    public init(raw: MatrixView, normed: MatrixView, rstd: UnsafeMutableBufferPointer<Float>) {
        (self.raw, self.normed, self.rstd) = (raw, normed, rstd)
    }
}

/// The buffers a forward pass writes, allocated once for up to `rowCapacity` rows (B·T) whose
/// queries see up to `keyCapacity` keys, and reused by every pass that fits.
///
/// `.training` keeps every layer's intermediates (what backward reads) and the logits.
/// `.inference` keeps one layer's worth, reused by every layer, and one residual stream updated in
/// place (`x += attention(norm(x))`, `x += ffn(norm(x))`): a fraction of the memory, no residual
/// copies, and a working set that stays in cache; the caller owns the logits.
final class ForwardActivations {
    enum Mode { case training, inference }

    let mode: Mode
    let kernel: AttentionKernel
    let rowCapacity: Int
    let keyCapacity: Int
    /// [rowCapacity, V] in training (the cross-entropy turns them into their gradient in place).
    let logits: TensorBuffer?

    private let config: ModelConfig
    private let residual: TensorBuffer, afterAttention: TensorBuffer
    private let norm1: TensorBuffer, rstd1: TensorBuffer, norm2: TensorBuffer, rstd2: TensorBuffer
    private let qkv: TensorBuffer, probabilities: TensorBuffer, logSumExp: TensorBuffer, attentionWorkspace: TensorBuffer
    private let context: TensorBuffer, gateUp: TensorBuffer, gated: TensorBuffer
    /// QK-norm: the pre-norm q | k (training only) and the rstd of every head's rows.
    private let qkRaw: TensorBuffer, qkRstd: TensorBuffer
    /// Post-norms: each branch before and after its norm, and the norm's rstd ([2] per slot:
    /// attention, feed-forward).
    private let branchRaw: TensorBuffer, branchNormed: TensorBuffer, branchRstd: TensorBuffer
    private let normFinal: TensorBuffer, rstdFinal: TensorBuffer
    private let positions: UnsafeMutableBufferPointer<Int>
    private let (layerSlots, residualSlots, probabilitiesPerLayer, logSumExpPerLayer): (Int, Int, Int, Int)

    /// Bytes the buffers for `rows` rows over `keys` keys take, counted before allocating them.
    static func bytes(config: ModelConfig, rows: Int, keys: Int, mode: Mode, kernel: AttentionKernel) -> Double {
        let (n, c, f, h) = (Double(rows), Double(config.dModel), Double(config.dFF), Double(config.numHeads))
        let layers = mode == .training ? Double(config.numLayers) : 1
        let attention = kernel == .standard ? h * n * Double(keys) : h * (n + Double(keys))
        let qkHeads = config.architecture.qkNorm ? Double(config.numHeads + config.numKVHeads) : 0
        let qkNorm = qkHeads * n * (1 + (mode == .training ? Double(config.headDim) : 0))
        let postNorms = config.architecture.postNorms ? 2 * n * (2 * c + 1) : 0
        let perLayer = n * (3 * c + Double(config.attentionWidth) + 2 + Double(config.qkvWidth) + 3 * f) + attention + qkNorm + postNorms
        let logits = mode == .training ? n * Double(config.vocabSize) : 0
        let workspace = kernel == .standard ? 0 : Double(FlashAttention.workspaceCount(keyLength: keys, headDim: config.headDim))
        return 4 * (layers * perLayer + (layers + 1) * n * c + n * (c + 1) + logits + workspace) + 8 * n
    }

    init(config: ModelConfig, rows: Int, keys: Int, mode: Mode, kernel: AttentionKernel) {
        precondition(rows >= 1 && keys >= 1, "ForwardActivations: \(rows) rows and \(keys) keys must be positive")
        (self.config, self.mode, self.kernel, rowCapacity, keyCapacity) = (config, mode, kernel, rows, keys)
        let (n, c, f, h) = (rows, config.dModel, config.dFF, config.numHeads)
        layerSlots = mode == .training ? config.numLayers : 1
        residualSlots = mode == .training ? config.numLayers + 1 : 1
        // The standard kernel keeps [B·H·T, Tk]; the memory-efficient one [B·H·T], and in inference
        // a one-row cached step still runs the standard kernel (one query: nothing to tile).
        probabilitiesPerLayer = kernel == .standard ? h * n * keys : (mode == .inference ? h * keys : 0)
        logSumExpPerLayer = kernel == .memoryEfficient ? h * n : 0
        residual = TensorBuffer(count: residualSlots * n * c)
        // In inference the residual after attention is the stream itself.
        afterAttention = mode == .training ? TensorBuffer(count: layerSlots * n * c) : residual
        norm1 = TensorBuffer(count: layerSlots * n * c)
        rstd1 = TensorBuffer(count: layerSlots * n)
        norm2 = TensorBuffer(count: layerSlots * n * c)
        rstd2 = TensorBuffer(count: layerSlots * n)
        qkv = TensorBuffer(count: layerSlots * n * config.qkvWidth)
        probabilities = TensorBuffer(count: layerSlots * probabilitiesPerLayer)
        logSumExp = TensorBuffer(count: layerSlots * logSumExpPerLayer)
        attentionWorkspace = TensorBuffer(count: kernel == .standard ? 0 : FlashAttention.workspaceCount(keyLength: keys, headDim: config.headDim))
        context = TensorBuffer(count: layerSlots * n * config.attentionWidth)
        let qkHeads = config.architecture.qkNorm ? config.numHeads + config.numKVHeads : 0
        qkRaw = TensorBuffer(count: mode == .training ? layerSlots * n * qkHeads * config.headDim : 0)
        qkRstd = TensorBuffer(count: layerSlots * n * qkHeads)
        let branches = config.architecture.postNorms ? 2 : 0
        branchRaw = TensorBuffer(count: layerSlots * branches * n * c)
        // In inference a branch is normed in place.
        branchNormed = mode == .training ? TensorBuffer(count: layerSlots * branches * n * c) : branchRaw
        branchRstd = TensorBuffer(count: layerSlots * branches * n)
        gateUp = TensorBuffer(count: layerSlots * n * 2 * f)
        gated = TensorBuffer(count: layerSlots * n * f)
        normFinal = TensorBuffer(count: n * c)
        rstdFinal = TensorBuffer(count: n)
        logits = mode == .training ? TensorBuffer(count: n * config.vocabSize) : nil
        positions = .allocate(capacity: n)
        positions.initialize(repeating: 0)
    }

    deinit { positions.deallocate() }

    /// The residual stream entering layer `index` (`index == numLayers`: leaving the last): [rows, C].
    func residual(_ index: Int, rows: Int) -> MatrixView {
        residual.matrix(at: (index % residualSlots) * rowCapacity * config.dModel, rows: rows, columns: config.dModel)
    }

    /// Layer `index`'s views for a pass of `dims` (`B·Tq` rows seeing `Tk` keys).
    func layer(_ index: Int, dims: AttentionDims) -> BlockActivations {
        let n = dims.batch * dims.queryLength, slot = index % layerSlots
        precondition(n <= rowCapacity && dims.keyLength <= keyCapacity,
                     "ForwardActivations: \(n) rows over \(dims.keyLength) keys exceed \(rowCapacity) rows over \(keyCapacity)")
        let (c, f) = (config.dModel, config.dFF)
        func rows(_ buffer: TensorBuffer, _ columns: Int) -> MatrixView {
            buffer.matrix(at: slot * rowCapacity * columns, rows: n, columns: columns)
        }
        let architecture = config.architecture, qkHeads = config.numHeads + config.numKVHeads
        let qkNorm = architecture.qkNorm
            ? QKNormMemory(raw: mode == .training ? rows(qkRaw, qkHeads * config.headDim) : nil,
                           rstd: qkRstd.slice(slot * rowCapacity * qkHeads, n * qkHeads)) : nil
        /// Branch `branch` (0: attention, 1: feed-forward) of the post-norms.
        func postNorm(_ branch: Int) -> PostNormMemory? {
            guard architecture.postNorms else { return nil }
            let offset = (2 * slot + branch) * rowCapacity
            return PostNormMemory(raw: branchRaw.matrix(at: offset * c, rows: n, columns: c),
                                  normed: branchNormed.matrix(at: offset * c, rows: n, columns: c), rstd: branchRstd.slice(offset, n))
        }
        return BlockActivations(
            input: residual(index, rows: n), output: residual(index + 1, rows: n), afterAttention: rows(afterAttention, c),
            norm1: rows(norm1, c), rstd1: rstd1.slice(slot * rowCapacity, n),
            norm2: rows(norm2, c), rstd2: rstd2.slice(slot * rowCapacity, n),
            qkv: rows(qkv, config.qkvWidth), attention: attentionMemory(slot, dims: dims),
            context: rows(context, config.attentionWidth), gateUp: rows(gateUp, 2 * f), gated: rows(gated, f),
            qkNorm: qkNorm, postAttention: postNorm(0), postFeedForward: postNorm(1))
    }

    /// The final norm's output [rows, C] and its 1/rms [rows].
    func finalNorm(rows: Int) -> (output: MatrixView, rstd: UnsafeMutableBufferPointer<Float>) {
        (normFinal.matrix(at: 0, rows: rows, columns: config.dModel), rstdFinal.slice(0, rows))
    }

    /// Row `b·T + t`'s absolute position `start + t`, for RoPE.
    func positions(batch: Int, length: Int, start: Int) -> UnsafeBufferPointer<Int> {
        for row in 0..<(batch * length) { positions[row] = start + row % length }
        return UnsafeBufferPointer(rebasing: positions[0..<(batch * length)])
    }

    /// The next position of each stream, for a batched decode step.
    func positions(of streams: [KVCache]) -> UnsafeBufferPointer<Int> {
        for (row, stream) in streams.enumerated() { positions[row] = stream.length }
        return UnsafeBufferPointer(rebasing: positions[0..<streams.count])
    }

    private func attentionMemory(_ slot: Int, dims: AttentionDims) -> AttentionMemory {
        let rows = dims.batch * dims.heads * dims.queryLength
        if kernel == .standard || (mode == .inference && dims.batch * dims.queryLength == 1) {
            return .probabilities(probabilities.matrix(at: slot * probabilitiesPerLayer, rows: rows, columns: dims.keyLength))
        }
        return .logSumExp(logSumExp.slice(slot * logSumExpPerLayer, rows), workspace: attentionWorkspace.storage)
    }
}
