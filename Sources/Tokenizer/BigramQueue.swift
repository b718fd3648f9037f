/// The candidate merges of ``ScoredPieceEncoder``, best first: llama.cpp's `llm_bigram_spm`
/// queue, the highest score first and the leftmost on a tie. Storage is kept between words.
struct BigramQueue {
    struct Bigram {
        let score: Float
        /// Symbol indices of the pair; indices grow left to right.
        let left: Int32, right: Int32
        /// Bytes of the joined text (llama.cpp's test that neither side has merged since).
        let size: Int32
        /// The piece the pair merges into.
        let id: Int32

        @inline(__always)
        func isBetter(than other: Bigram) -> Bool { score != other.score ? score > other.score : left < other.left }
    }

    private var items: [Bigram] = []

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ bigram: Bigram) {
        items.append(bigram)
        items.withUnsafeMutableBufferPointer { heap in
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[child].isBetter(than: heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }
    }

    mutating func pop() -> Bigram? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return top }
        items.withUnsafeMutableBufferPointer { heap in
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var best = parent
                if left < heap.count && heap[left].isBetter(than: heap[best]) { best = left }
                if right < heap.count && heap[right].isBetter(than: heap[best]) { best = right }
                if best == parent { break }
                heap.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}
