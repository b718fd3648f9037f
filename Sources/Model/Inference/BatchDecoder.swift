import Kernels

/// Several sequences decoded together, each in a slot with a KV cache of its own: the engine
/// under continuous batching (a server's parallel streams). A sequence's prompt is prefilled
/// alone into its slot; then each ``step(_:)`` advances every listed slot by one token in one
/// forward, so the weights are read once per step for all of them (a step for 8 streams is a
/// product with 8 rows).
///
/// Batch invariance: a step multiplies each row on its own (``/Kernels/BatchInvariantWeight``) and
/// attends over its own cache, so a slot's logits are the same bits whichever other slots share
/// its steps, and however many. A request served in a crowd gives the text it gives alone.
/// (They are not the bits of ``InferenceSession/step(_:)``, whose one-row products multiply inside
/// the blocks; the difference is Float32 rounding.)
public final class BatchDecoder {
    public let model: TransformerLM
    /// Number of slots: the most sequences decoded at once.
    public let slotCount: Int
    /// Most tokens each slot holds.
    public let context: Int
    /// Largest number of prompt tokens prefilled in one pass.
    public let maxChunk: Int

    private let caches: [KVCache]
    private let prefillActivations: ForwardActivations
    private let stepActivations: ForwardActivations
    /// [max(slotCount, 1), vocab]
    private let logits: TensorBuffer

    /// Allocates every buffer: `slots` caches of `context` positions (at most the model's; its
    /// whole context by default) and the activations of a `slots`-row step.
    public init(model: TransformerLM, slots: Int, context: Int? = nil, maxChunk: Int = 256) throws {
        let config = model.config
        guard slots >= 1 && slots <= 256 else { throw ModelError("slots must be in 1...256, got \(slots)") }
        self.model = model
        slotCount = slots
        let held = min(max(context ?? config.contextLength, 1), config.contextLength)
        self.context = held
        self.maxChunk = max(1, min(maxChunk, held))
        let chunk = self.maxChunk
        let cacheBytes = KVCache.bytes(config: config, capacity: held, maxChunk: chunk) * Double(slots)
        try SizeLimits.requireMemory(cacheBytes, for: "\(slots) KV caches of \(held) positions")
        caches = (0..<slots).map { _ in KVCache(config: config, capacity: held, maxChunk: chunk) }
        let kernel = model.attention.kernel(config: config, batch: 1, length: held, training: false)
        prefillActivations = ForwardActivations(config: config, rows: self.maxChunk, keys: held, mode: .inference, kernel: kernel)
        stepActivations = ForwardActivations(config: config, rows: slots, keys: held, mode: .inference, kernel: .standard)
        logits = TensorBuffer(count: slots * config.vocabSize)
    }

    /// Tokens cached in `slot`.
    public func length(of slot: Int) -> Int { caches[slot].length }

    /// Room left in `slot`.
    public func remaining(in slot: Int) -> Int { caches[slot].remaining }

    /// Forgets `slot`'s sequence.
    public func reset(slot: Int) { caches[slot].reset() }

    /// Forgets `slot`'s positions from `position` on (a prompt prefilled once, decoded again).
    @discardableResult
    public func rewind(slot: Int, to position: Int) -> Int { caches[slot].truncate(to: position) }

    /// Appends `tokens` to `slot`'s sequence and returns the logits after the last, `[vocab]`.
    /// Throws (the slot unchanged) on an id outside the vocabulary or tokens that do not fit.
    public func prefill(slot: Int, tokens: [Int32]) throws -> [Float] {
        let config = model.config, cache = try checkedCache(slot)
        guard !tokens.isEmpty else { throw ModelError("prefill: no tokens") }
        if let bad = config.firstInvalidToken(in: tokens) {
            throw ModelError("prefill: id \(bad.id) at index \(bad.index) is outside 0..<\(config.vocabSize)")
        }
        guard tokens.count <= cache.remaining else {
            throw ModelError("prefill: \(tokens.count) tokens at position \(cache.length) exceed the slot's context of \(context)")
        }
        var start = 0
        while start < tokens.count {
            let count = min(maxChunk, tokens.count - start)
            let wanted = start + count == tokens.count ? (count - 1)..<count : count..<count
            tokens.withUnsafeBufferPointer { ids in
                model.forward(tokens: UnsafeBufferPointer(rebasing: ids[start..<(start + count)]), batch: 1,
                              into: prefillActivations, cache: cache, logitRows: wanted,
                              logits: logits.matrix(at: 0, rows: wanted.count, columns: config.vocabSize))
            }
            start += count
        }
        try model.requireStorageIntact()
        return Array(logits.view(0, config.vocabSize))
    }

    /// One token for each of `entries`' slots (distinct), in one forward: returns their logits
    /// `[entries.count, vocab]`, row `i` for `entries[i]`, as a view of the decoder's buffer
    /// (valid until the next call).
    public func step(_ entries: [(slot: Int, token: Int32)]) throws -> UnsafeBufferPointer<Float> {
        let config = model.config
        guard !entries.isEmpty else { throw ModelError("step: no slots") }
        guard entries.count <= slotCount else { throw ModelError("step: \(entries.count) entries for \(slotCount) slots") }
        guard Set(entries.map(\.slot)).count == entries.count else { throw ModelError("step: a slot is listed twice") }
        var streams: [KVCache] = []
        streams.reserveCapacity(entries.count)
        for (slot, token) in entries {
            let cache = try checkedCache(slot)
            guard token >= 0 && Int(token) < config.vocabSize else {
                throw ModelError("step: id \(token) for slot \(slot) is outside 0..<\(config.vocabSize)")
            }
            guard cache.remaining >= 1 else { throw ModelError("step: slot \(slot) is full (context \(context))") }
            streams.append(cache)
        }
        let tokens = entries.map(\.token), rows = entries.count
        tokens.withUnsafeBufferPointer { ids in
            model.forward(tokens: ids, batch: rows, into: stepActivations, streams: streams, logitRows: 0..<rows,
                          logits: logits.matrix(at: 0, rows: rows, columns: config.vocabSize))
        }
        try model.requireStorageIntact()
        return logits.view(0, rows * config.vocabSize)
    }

    private func checkedCache(_ slot: Int) throws -> KVCache {
        guard caches.indices.contains(slot) else { throw ModelError("slot \(slot) outside 0..<\(slotCount)") }
        return caches[slot]
    }
}
