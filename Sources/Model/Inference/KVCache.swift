import Kernels

/// Keys and values of every layer for one sequence, preallocated `[layer, capacity, kvDim]` each
/// (llama2.c's layout), and how many positions are filled. A cached forward writes its rows'
/// K and V (after RoPE at their absolute positions) at `length…` and advances `length`.
public final class KVCache {
    public let layers: Int
    public let capacity: Int
    public let kvDim: Int
    /// Positions filled; the next row goes to this position.
    public internal(set) var length = 0

    private let keys: TensorBuffer, values: TensorBuffer

    public init(layers: Int, capacity: Int, kvDim: Int) {
        precondition(layers >= 1 && capacity >= 1 && kvDim >= 1, "KVCache: sizes must be positive (\(layers), \(capacity), \(kvDim))")
        (self.layers, self.capacity, self.kvDim) = (layers, capacity, kvDim)
        keys = TensorBuffer(count: layers * capacity * kvDim)
        values = TensorBuffer(count: layers * capacity * kvDim)
    }

    /// A cache for `config`'s whole context.
    public convenience init(config: ModelConfig) {
        self.init(layers: config.numLayers, capacity: config.contextLength, kvDim: config.kvDim)
    }

    /// Room left.
    public var remaining: Int { capacity - length }

    /// Forgets every position (the memory is reused).
    public func reset() { length = 0 }

    /// Forgets the positions from `position` on, keeping the earlier ones (a conversation whose
    /// next prompt shares only a prefix with what is cached).
    public func truncate(to position: Int) {
        precondition(position >= 0 && position <= length, "KVCache.truncate: position \(position) outside 0...\(length)")
        length = position
    }

    /// Layer `layer`'s keys and values, with the next rows going to `length`.
    func slot(layer: Int) -> KVCacheSlot {
        let offset = layer * capacity * kvDim
        return KVCacheSlot(keys: keys.matrix(at: offset, rows: capacity, columns: kvDim),
                           values: values.matrix(at: offset, rows: capacity, columns: kvDim), start: length)
    }
}
