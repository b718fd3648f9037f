import Kernels

/// Incremental inference with a key/value cache: the prompt in batched chunks (GEMMs), then one
/// token per step, each step attending over the cached keys and values of every earlier position.
///
/// The cache is preallocated `[layer, context, kvDim]` for keys and for values; a step writes its
/// K and V (after RoPE at the absolute position) straight into slot `position`. Logits from a
/// prefill plus cached steps equal those of a full forward over the same tokens.
public final class InferenceSession {
    public let model: TransformerLM
    /// Tokens already in the cache; the next token goes to this position.
    public private(set) var position = 0
    /// Largest number of tokens processed in one batched pass; longer inputs are split.
    public let maxChunk: Int

    private let keys: TensorBuffer, values: TensorBuffer
    private let x: TensorBuffer, norm: TensorBuffer, rstd: TensorBuffer, qkv: TensorBuffer
    private let context: TensorBuffer, gateUp: TensorBuffer, gated: TensorBuffer
    /// Attention's probabilities for the standard kernel (a decode step always uses it: one
    /// query row); log-sum-exps and tiles for the memory-efficient kernel's prefill.
    private let probs: TensorBuffer, logSumExp: TensorBuffer, flashWorkspace: TensorBuffer
    /// The prefill's attention kernel: the model's choice at a full context.
    public let attentionKernel: AttentionKernel
    private let logits: TensorBuffer
    private let positions: UnsafeMutableBufferPointer<Int>

    /// All buffers are allocated here, sized for the model's context and `maxChunk`.
    public init(model: TransformerLM, maxChunk: Int = 256) {
        precondition(maxChunk >= 1, "InferenceSession: maxChunk must be at least 1")
        let config = model.config
        self.model = model
        self.maxChunk = min(maxChunk, config.contextLength)
        let (chunk, c, t) = (self.maxChunk, config.dModel, config.contextLength)
        keys = TensorBuffer(count: config.numLayers * t * config.kvDim)
        values = TensorBuffer(count: config.numLayers * t * config.kvDim)
        x = TensorBuffer(count: chunk * c)
        norm = TensorBuffer(count: chunk * c)
        rstd = TensorBuffer(count: chunk)
        qkv = TensorBuffer(count: chunk * config.qkvWidth)
        context = TensorBuffer(count: chunk * c)
        attentionKernel = model.attention.kernel(config: config, batch: 1, length: t, training: false)
        let efficient = attentionKernel == .memoryEfficient
        probs = TensorBuffer(count: config.numHeads * (efficient ? 1 : chunk) * t)
        logSumExp = TensorBuffer(count: efficient ? config.numHeads * chunk : 0)
        flashWorkspace = TensorBuffer(count: efficient ? FlashAttention.workspaceCount() : 0)
        gateUp = TensorBuffer(count: chunk * 2 * config.dFF)
        gated = TensorBuffer(count: chunk * config.dFF)
        logits = TensorBuffer(count: chunk * config.vocabSize)
        positions = .allocate(capacity: chunk)
        positions.initialize(repeating: 0)
    }

    deinit { positions.deallocate() }

    /// Forgets every cached position.
    public func reset() { position = 0 }

    /// Room left in the cache.
    public var remaining: Int { model.config.contextLength - position }

    /// Appends `tokens` at positions `position..<position + tokens.count` and returns the logits
    /// of the last one, `[vocab]`, or of every one, `[tokens.count, vocab]`, with `allLogits`.
    /// Throws when an id is outside the vocabulary or the tokens do not fit in the context
    /// (the cache is then unchanged).
    public func append(_ tokens: [Int32], allLogits: Bool = false) throws -> [Float] {
        let config = model.config
        guard !tokens.isEmpty else { throw ModelError("append: no tokens") }
        if let bad = config.firstInvalidToken(in: tokens) {
            throw ModelError("append: id \(bad.id) at index \(bad.index) is outside 0..<\(config.vocabSize)")
        }
        guard tokens.count <= remaining else {
            throw ModelError("append: \(tokens.count) tokens at position \(position) exceed context_length \(config.contextLength)")
        }
        var result: [Float] = []
        result.reserveCapacity(allLogits ? tokens.count * config.vocabSize : config.vocabSize)
        var start = 0
        while start < tokens.count {
            let count = min(maxChunk, tokens.count - start)
            let isLast = start + count == tokens.count
            tokens.withUnsafeBufferPointer { ids in
                runChunk(UnsafeBufferPointer(rebasing: ids[start..<(start + count)]), logitRows: allLogits ? count : (isLast ? 1 : 0))
            }
            if allLogits || isLast {
                let rows = allLogits ? count : 1
                result += logits.view(0, rows * config.vocabSize)
            }
            start += count
        }
        return result
    }

    /// Appends one token and returns the logits of it, `[vocab]`, as a view of the session's own
    /// buffer (valid until the next call): a decode step without allocation.
    public func step(_ token: Int32) throws -> UnsafeBufferPointer<Float> {
        let config = model.config
        guard token >= 0 && Int(token) < config.vocabSize else {
            throw ModelError("step: id \(token) is outside 0..<\(config.vocabSize)")
        }
        guard remaining >= 1 else { throw ModelError("step: the cache is full (context_length \(config.contextLength))") }
        withUnsafePointer(to: token) { runChunk(UnsafeBufferPointer(start: $0, count: 1), logitRows: 1) }
        return logits.view(0, config.vocabSize)
    }

    /// One batched pass over `ids` (at most `maxChunk`), writing K/V into the cache and the
    /// logits of the last `logitRows` tokens into `logits`.
    private func runChunk(_ ids: UnsafeBufferPointer<Int32>, logitRows: Int) {
        let config = model.config
        let (n, c, f, kvDim, capacity) = (ids.count, config.dModel, config.dFF, config.kvDim, config.contextLength)
        let start = position
        for i in 0..<n { positions[i] = start + i }
        let chunkPositions = UnsafeBufferPointer(rebasing: positions[0..<n])
        let dims = AttentionDims(batch: 1, queryLength: n, keyLength: start + n,
                                 heads: config.numHeads, kvHeads: config.numKVHeads, headDim: config.headDim)
        let attention: AttentionMemory = attentionKernel == .standard || n == 1
            ? .probabilities(probs.slice(0, config.numHeads * n * (start + n)))
            : .logSumExp(logSumExp.slice(0, config.numHeads * n), workspace: flashWorkspace.storage)
        // One residual stream updated in place, one set of scratch buffers shared by all layers.
        let stream = x.slice(0, n * c), norm = self.norm.slice(0, n * c), rstd = self.rstd.slice(0, n)
        let buffers = ForwardActivations.Layer(
            input: stream, output: stream, afterAttention: stream, norm1: norm, rstd1: rstd, norm2: norm, rstd2: rstd,
            qkv: qkv.slice(0, n * config.qkvWidth), attention: attention,
            context: context.slice(0, n * c), gateUp: gateUp.slice(0, n * 2 * f), gated: gated.slice(0, n * f))

        Embedding.forward(ids: ids, table: UnsafeBufferPointer(model.weights.embedding), y: stream, vocabSize: config.vocabSize, dim: c)
        for (layer, weights) in model.weights.layers.enumerated() {
            let cache = KVCacheSlot(keys: keys.pointer + layer * capacity * kvDim, values: values.pointer + layer * capacity * kvDim,
                                    capacity: capacity, start: start)
            TransformerBlock.forward(weights: weights, buffers: buffers, dims: dims, positions: chunkPositions,
                                     rope: model.rope, config: config, cache: cache)
        }
        position += n
        guard logitRows > 0 else { return }
        // Only the rows whose logits are wanted go through the final norm and the head.
        let first = n - logitRows
        let lastRows = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(stream)[(first * c)..<(n * c)])
        RMSNorm.forward(x: lastRows, weight: UnsafeBufferPointer(model.weights.finalNorm), y: self.norm.slice(0, logitRows * c),
                        rstd: self.rstd.slice(0, logitRows), rows: logitRows, dim: c, epsilon: config.normEps)
        Linear.forward(x: self.norm.view(0, logitRows * c), weight: UnsafeBufferPointer(model.weights.head),
                       y: logits.slice(0, logitRows * config.vocabSize), rows: logitRows, inFeatures: c, outFeatures: config.vocabSize)
    }
}
