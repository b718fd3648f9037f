import Foundation

/// Counts pre-tokenized pieces over text, in parallel over chunks cut at safe places.
enum PieceCounter {
    static func count(_ text: UnsafeBufferPointer<UInt8>, specials: SpecialTokenMatcher, threads: Int,
                      minimumChunk: Int = 1 << 18, progress: ((BPETrainingProgress) -> Void)?) -> ByteStringMap<UInt64> {
        let chunks = SafeCuts.chunks(text, count: threads * 8, minimumChunk: minimumChunk, specials: specials)
        let lock = NSLock()
        var bytesDone = 0
        let partial = mapChunksConcurrently(chunks.count, workers: threads, { _, index in
            var counts = ByteStringMap<UInt64>(capacity: 1 << 14)
            let chunk = UnsafeBufferPointer(rebasing: text[chunks[index]])
            specials.split(chunk, text: { range in
                let segment = UnsafeBufferPointer(rebasing: chunk[range])
                PreTokenizer.forEachPiece(in: segment) { piece in
                    counts.update(UnsafeBufferPointer(rebasing: segment[piece]), initial: 0) { $0 += 1 }
                }
            }, special: { _ in })
            return counts
        }, completed: { index in
            lock.lock()
            bytesDone += chunks[index].count
            let done = bytesDone
            lock.unlock()
            progress?(.counting(bytesDone: done, bytesTotal: text.count))
        })
        var total = partial[0]
        for counts in partial.dropFirst() {
            counts.forEach { key, count in total.update(key, initial: 0) { $0 += count } }
        }
        return total
    }
}
