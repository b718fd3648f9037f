import Foundation

/// Encodes with several threads, each with its own ``Encoder`` (and cache) kept across calls:
/// text is cut at safe places (``SafeCuts``) into more chunks than threads, the threads take
/// chunks in turn, and the ids are joined in order. The result equals serial encoding.
public final class ParallelEncoder {
    public let tokenizer: Tokenizer
    public let threads: Int
    /// The smallest chunk worth a thread of its own (tests lower it to cut short texts).
    let minimumChunk: Int
    private let encoders: [Encoder]

    public convenience init(tokenizer: Tokenizer, threads: Int) {
        self.init(tokenizer: tokenizer, threads: threads, minimumChunk: 1 << 15)
    }

    init(tokenizer: Tokenizer, threads: Int, minimumChunk: Int) {
        self.tokenizer = tokenizer
        self.threads = max(1, threads)
        self.minimumChunk = max(1, minimumChunk)
        encoders = (0..<max(1, threads)).map { _ in tokenizer.makeEncoder() }
    }

    /// Appends the ids of `text` (valid UTF-8) to `ids`.
    public func encode(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        let chunks = threads > 1
            ? SafeCuts.chunks(text, count: threads * 4, minimumChunk: minimumChunk, specials: tokenizer.specials,
                              rules: tokenizer.rules.preTokenization)
            : [0..<text.count]
        guard chunks.count > 1 else {
            encoders[0].encode(text, into: &ids)
            return
        }
        let results = mapChunksConcurrently(chunks.count, workers: threads) { worker, index -> [Int32] in
            var chunkIDs: [Int32] = []
            encoders[worker].encode(UnsafeBufferPointer(rebasing: text[chunks[index]]), into: &chunkIDs)
            return chunkIDs
        }
        for chunkIDs in results { ids.append(contentsOf: chunkIDs) }
    }
}
