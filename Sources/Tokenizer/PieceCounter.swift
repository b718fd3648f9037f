import Foundation

/// Counts pre-tokenized pieces over text, in parallel over chunks cut at safe places.
enum PieceCounter {
    static func count(_ text: UnsafeBufferPointer<UInt8>, specials: SpecialTokenMatcher, threads: Int,
                      progress: ((BPETrainingProgress) -> Void)?) -> ByteStringMap<UInt64> {
        let chunks = SafeCuts.chunks(text, count: threads * 8, minimumChunk: 1 << 18, specials: specials)
        var partial = [ByteStringMap<UInt64>?](repeating: nil, count: chunks.count)
        let lock = NSLock()
        var next = 0, bytesDone = 0
        DispatchQueue.concurrentPerform(iterations: min(threads, chunks.count)) { _ in
            while true {
                lock.lock()
                let index = next
                next += 1
                lock.unlock()
                guard index < chunks.count else { return }
                var counts = ByteStringMap<UInt64>(capacity: 1 << 14)
                let chunk = UnsafeBufferPointer(rebasing: text[chunks[index]])
                specials.split(chunk, text: { range in
                    let segment = UnsafeBufferPointer(rebasing: chunk[range])
                    PreTokenizer.forEachPiece(in: segment) { piece in
                        counts.update(UnsafeBufferPointer(rebasing: segment[piece]), initial: 0) { $0 += 1 }
                    }
                }, special: { _ in })
                lock.lock()
                partial[index] = counts
                bytesDone += chunks[index].count
                let done = bytesDone
                lock.unlock()
                progress?(.counting(bytesDone: done, bytesTotal: text.count))
            }
        }
        var total = partial[0] ?? ByteStringMap<UInt64>()
        for index in partial.indices.dropFirst() {
            partial[index]?.forEach { key, count in total.update(key, initial: 0) { $0 += count } }
        }
        return total
    }
}
