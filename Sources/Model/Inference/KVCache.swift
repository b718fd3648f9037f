import Foundation
import Kernels

/// Keys and values of every layer for one sequence (llama2.c's layout, `[rows, kvDim]` per layer
/// for keys and for values), and how many positions are filled. A cached forward writes its rows'
/// K and V (after RoPE at their absolute positions) after the filled ones and advances `length`.
///
/// A global layer keeps every position of the context. A sliding-window layer (Gemma 3's local
/// layers) keeps only what its window can still see: `window − 1 + margin` earlier positions plus
/// room for one chunk. When a chunk would not fit, the rows still needed move to the front (a
/// copy of about a window's rows every `maxChunk` positions), so the keys a chunk attends over
/// stay contiguous and in order, and the attention kernels read them as they read a global
/// layer's. Gemma 3 270M at a 32,768-token context keeps 15 of its 18 layers at 1,023 rows (window 512, margin 256, chunks of 256): 233 MB of keys and values
/// where every layer at full length would take 1,208 MB.
public final class KVCache {
    public let layers: Int
    /// Positions the sequence may hold.
    public let capacity: Int
    public let kvDim: Int
    /// Positions filled; the next row goes to this position.
    public internal(set) var length = 0
    /// Rows each layer keeps: `capacity`, or fewer for a sliding-window layer.
    public let rowsPerLayer: [Int]
    /// Each layer's window (nil: global).
    let windows: [Int?]
    /// Earlier positions a sliding layer keeps beyond its window, so that a conversation can
    /// rewind this far without losing what the window needs (``defaultRewindMargin`` unless given).
    public let rewindMargin: Int
    public static let defaultRewindMargin = 256

    private let keys: TensorBuffer, values: TensorBuffer
    /// Where each layer's rows start in `keys` and `values`.
    private let offsets: [Int]
    /// The absolute position of each layer's row 0 (0 for global layers).
    private var bases: [Int]

    /// Every layer global, `capacity` rows each.
    public convenience init(layers: Int, capacity: Int, kvDim: Int) {
        self.init(capacity: capacity, kvDim: kvDim, windows: Array(repeating: nil, count: layers), maxChunk: capacity, rewindMargin: 0)
    }

    /// A cache for a model with `config`: `capacity` positions (its whole context by default);
    /// sliding layers keep their window, plus the margin, plus `maxChunk` rows for the chunk being added.
    public convenience init(config: ModelConfig, capacity: Int? = nil, maxChunk: Int = 256, rewindMargin: Int = defaultRewindMargin) {
        self.init(capacity: capacity ?? config.contextLength, kvDim: config.kvDim,
                  windows: (0..<config.numLayers).map { config.architecture.window(layer: $0) }, maxChunk: maxChunk, rewindMargin: rewindMargin)
    }

    init(capacity: Int, kvDim: Int, windows: [Int?], maxChunk: Int, rewindMargin: Int) {
        precondition(!windows.isEmpty && capacity >= 1 && kvDim >= 1 && maxChunk >= 1 && rewindMargin >= 0,
                     "KVCache: sizes must be positive (\(windows.count) layers, \(capacity), \(kvDim), chunk \(maxChunk), margin \(rewindMargin))")
        (self.layers, self.capacity, self.kvDim, self.windows, self.rewindMargin) = (windows.count, capacity, kvDim, windows, rewindMargin)
        rowsPerLayer = Self.rows(windows: windows, capacity: capacity, maxChunk: maxChunk, rewindMargin: rewindMargin)
        var start = 0
        offsets = rowsPerLayer.map { rows in defer { start += rows * kvDim }; return start }
        keys = TensorBuffer(count: start)
        values = TensorBuffer(count: start)
        bases = Array(repeating: 0, count: windows.count)
    }

    /// Bytes the keys and values take.
    public var bytes: Int { 8 * rowsPerLayer.reduce(0, +) * kvDim }

    /// The rows each layer keeps.
    static func rows(windows: [Int?], capacity: Int, maxChunk: Int, rewindMargin: Int = defaultRewindMargin) -> [Int] {
        windows.map { window in window.map { min(capacity, $0 - 1 + rewindMargin + maxChunk) } ?? capacity }
    }

    /// Bytes a cache for `config` would take, counted before allocating it.
    static func bytes(config: ModelConfig, capacity: Int, maxChunk: Int) -> Double {
        let rows = rows(windows: (0..<config.numLayers).map { config.architecture.window(layer: $0) }, capacity: capacity, maxChunk: maxChunk)
        return 8 * Double(rows.reduce(0, +)) * Double(config.kvDim)
    }

    /// Room left.
    public var remaining: Int { capacity - length }

    /// Forgets every position (the memory is reused).
    public func reset() {
        length = 0
        bases = Array(repeating: 0, count: layers)
    }

    /// Forgets the positions from `position` on, keeping the earlier ones (a conversation whose
    /// next prompt shares only a prefix with what is cached), and returns the position kept:
    /// `position`, or 0 (everything forgotten) when a sliding layer no longer holds the window
    /// before it (a rewind past ``rewindMargin``); the caller then appends from there.
    @discardableResult
    public func truncate(to position: Int) -> Int {
        precondition(position >= 0 && position <= length, "KVCache.truncate: position \(position) outside 0...\(length)")
        for (layer, window) in windows.enumerated() {
            if let window, max(0, position - window + 1) < bases[layer] {
                reset()
                return 0
            }
        }
        length = position
        return position
    }

    /// Layer `layer`'s keys and values, with room for `rows` more after `length` (a sliding
    /// layer moves its still-visible rows to the front when they would not fit). The slot's
    /// positions are relative to the layer's first kept one; RoPE has used absolute positions.
    func slot(layer: Int, adding rows: Int) -> KVCacheSlot {
        let layerRows = rowsPerLayer[layer]
        if let window = windows[layer], length - bases[layer] + rows > layerRows {
            let keep = min(length - bases[layer], window - 1 + rewindMargin)
            precondition(keep + rows <= layerRows, "KVCache: \(rows) rows do not fit a sliding layer of \(layerRows) rows")
            let from = length - keep - bases[layer]
            for buffer in [keys, values] {
                let base = buffer.pointer + offsets[layer]
                memmove(base, base + from * kvDim, keep * kvDim * MemoryLayout<Float>.stride)  // the two ranges may overlap
            }
            bases[layer] = length - keep
        }
        return KVCacheSlot(keys: keys.matrix(at: offsets[layer], rows: layerRows, columns: kvDim),
                           values: values.matrix(at: offsets[layer], rows: layerRows, columns: kvDim), start: length - bases[layer])
    }
}
