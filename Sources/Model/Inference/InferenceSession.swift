import Kernels

/// Incremental inference with a key/value cache: the prompt in batched chunks (GEMMs), then one
/// token per step, each step attending over the cached keys and values of every earlier position.
///
/// The cache is preallocated `[layer, rows, kvDim]` for keys and for values (every position of
/// the context for a global layer, the window's for a sliding one: ``KVCache``); a step writes its
/// K and V (after RoPE at the absolute position) straight after the filled rows. Logits from a
/// prefill plus cached steps equal those of a full forward over the same tokens.
public final class InferenceSession {
    public let model: TransformerLM
    /// Tokens already in the cache; the next token goes to this position.
    public var position: Int { cache.length }
    /// Largest number of tokens processed in one batched pass; longer inputs are split.
    public let maxChunk: Int
    /// The prefill's attention kernel: the model's choice at a full context.
    public let attentionKernel: AttentionKernel

    private let cache: KVCache
    /// One layer's worth of activations for a chunk, shared by every layer.
    private let activations: ForwardActivations
    /// [maxChunk, V]
    private let logits: TensorBuffer

    /// Most tokens the session holds: the model's context, or less when asked (a 128k-token
    /// model's full KV cache would take gigabytes).
    public let context: Int

    /// All buffers are allocated here, sized for `context` (at most the model's, its whole
    /// context by default) and `maxChunk`.
    public init(model: TransformerLM, maxChunk: Int = 256, context: Int? = nil) {
        precondition(maxChunk >= 1, "InferenceSession: maxChunk must be at least 1")
        let config = model.config
        self.model = model
        self.context = min(max(context ?? config.contextLength, 1), config.contextLength)
        self.maxChunk = min(maxChunk, self.context)
        attentionKernel = model.attention.kernel(config: config, batch: 1, length: self.context, training: false)
        cache = KVCache(config: config, capacity: self.context, maxChunk: self.maxChunk)
        activations = ForwardActivations(config: config, rows: self.maxChunk, keys: self.context, mode: .inference, kernel: attentionKernel)
        logits = TensorBuffer(count: self.maxChunk * config.vocabSize)
    }

    /// Forgets every cached position.
    public func reset() { cache.reset() }

    /// Forgets the cached positions from `position` on and returns the position kept: `position`,
    /// or 0 when a sliding-window layer no longer holds what came before it (``KVCache/truncate(to:)``).
    @discardableResult
    public func rewind(to position: Int) -> Int { cache.truncate(to: position) }

    /// Bytes the KV cache takes (sliding-window layers keep only their window).
    public var cacheBytes: Int { cache.bytes }

    /// Room left in the cache.
    public var remaining: Int { cache.remaining }

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
            throw ModelError("append: \(tokens.count) tokens at position \(position) exceed \(context == config.contextLength ? "context_length \(context)" : "the session's context of \(context)")")
        }
        var result: [Float] = []
        result.reserveCapacity(allLogits ? tokens.count * config.vocabSize : config.vocabSize)
        var start = 0
        while start < tokens.count {
            let count = min(maxChunk, tokens.count - start)
            let isLast = start + count == tokens.count
            let wanted = allLogits ? 0..<count : (isLast ? (count - 1)..<count : count..<count)
            tokens.withUnsafeBufferPointer { ids in
                run(UnsafeBufferPointer(rebasing: ids[start..<(start + count)]), logitRows: wanted)
            }
            try model.requireStorageIntact()
            result += logits.view(0, wanted.count * config.vocabSize)
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
        guard remaining >= 1 else { throw ModelError("step: the cache is full (context \(context))") }
        withUnsafePointer(to: token) { run(UnsafeBufferPointer(start: $0, count: 1), logitRows: 0..<1) }
        try model.requireStorageIntact()
        return logits.view(0, config.vocabSize)
    }

    /// One cached pass of the model's forward over `ids` (at most `maxChunk`).
    private func run(_ ids: UnsafeBufferPointer<Int32>, logitRows: Range<Int>) {
        model.forward(tokens: ids, batch: 1, into: activations, cache: cache, logitRows: logitRows,
                      logits: logits.matrix(at: 0, rows: logitRows.count, columns: model.config.vocabSize))
    }
}
