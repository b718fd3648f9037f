/// Encoding state for one thread: a cache from pieces already seen to their ids, and scratch
/// arrays for the merge loop. Pieces repeat heavily in natural text, so most are a cache hit.
public final class Encoder {
    let tokenizer: Tokenizer
    private var cache = ByteStringMap<(start: Int32, count: Int32)>(capacity: 1 << 14)
    private var cachedIDs: [Int32] = []
    private var symbols: [Int32] = []
    private var ranks: [Int32] = []
    /// Pieces longer than this are not cached (they are rare and would crowd the cache).
    static let longestCachedPiece = 64
    /// The cache is emptied when it holds this many ids, bounding memory on endless streams.
    static let cacheLimit = 1 << 22
    /// Pieces with more bytes than this merge with a heap (n log n) instead of rescanning.
    static let heapThreshold = 128

    init(tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    /// Appends the ids of `text` (valid UTF-8) to `ids`.
    public func encode(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        tokenizer.specials.split(text, text: { range in
            let segment = UnsafeBufferPointer(rebasing: text[range])
            PreTokenizer.forEachPiece(in: segment) { piece in
                self.encodePiece(UnsafeBufferPointer(rebasing: segment[piece]), into: &ids)
            }
        }, special: { ids.append($0) })
    }

    /// One pre-tokenized piece: a whole-vocabulary hit, a cache hit, or the merge loop.
    @inline(__always)
    func encodePiece(_ piece: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        if piece.count == 1 {
            ids.append(tokenizer.byteIDs[Int(piece[0])])
            return
        }
        let cacheable = piece.count <= Self.longestCachedPiece
        let hash = FastHash.bytes(piece)
        if cacheable, let hit = cache.value(for: piece, hash: hash) {
            ids.append(contentsOf: cachedIDs[Int(hit.start)..<Int(hit.start + hit.count)])
            return
        }
        let first = ids.count
        // A piece that is itself a token is that token (tiktoken does the same).
        if let whole = tokenizer.idForBytes.value(for: piece, hash: hash) {
            ids.append(whole)
        } else if piece.count > Self.heapThreshold {
            HeapMerge.merge(piece, tokenizer: tokenizer, into: &ids)
        } else {
            mergeByScan(piece, into: &ids)
        }
        guard cacheable else { return }
        if cachedIDs.count > Self.cacheLimit {
            cache.removeAll()
            cachedIDs.removeAll(keepingCapacity: true)
        }
        cache.set((Int32(cachedIDs.count), Int32(ids.count - first)), for: piece, hash: hash)
        cachedIDs.append(contentsOf: ids[first...])
    }

    /// The short-piece merge loop on any piece, for tests comparing it with ``HeapMerge``.
    func mergeByScanForTesting(_ piece: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        mergeByScan(piece, into: &ids)
    }

    /// Byte-pair merging for short pieces: keep the rank of every adjacent pair, merge the
    /// leftmost lowest-ranked pair, recompute only its two neighbours, repeat.
    private func mergeByScan(_ piece: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        let table = tokenizer.mergeRanks
        symbols.removeAll(keepingCapacity: true)
        for byte in piece { symbols.append(tokenizer.byteIDs[Int(byte)]) }
        ranks.removeAll(keepingCapacity: true)
        for i in 0..<(symbols.count - 1) {
            ranks.append(table.value(PairMap<Int32>.key(symbols[i], symbols[i + 1]))?.rank ?? .max)
        }
        while true {
            var best = -1
            var bestRank = Int32.max
            for i in 0..<ranks.count where ranks[i] < bestRank {
                bestRank = ranks[i]
                best = i
            }
            guard best >= 0 else { break }
            symbols[best] = table.value(PairMap<Int32>.key(symbols[best], symbols[best + 1]))!.result
            symbols.remove(at: best + 1)
            ranks.remove(at: best)
            if best > 0 {
                ranks[best - 1] = table.value(PairMap<Int32>.key(symbols[best - 1], symbols[best]))?.rank ?? .max
            }
            if best < ranks.count {
                ranks[best] = table.value(PairMap<Int32>.key(symbols[best], symbols[best + 1]))?.rank ?? .max
            }
        }
        ids.append(contentsOf: symbols)
    }
}

/// Byte-pair merging in O(n log n) for long pieces (a megabyte of one letter is one piece):
/// symbols in a linked list over their original positions, candidate pairs in a min-heap of
/// (rank, position), stale candidates skipped when popped.
enum HeapMerge {
    static func merge(_ piece: UnsafeBufferPointer<UInt8>, tokenizer: Tokenizer, into ids: inout [Int32]) {
        let table = tokenizer.mergeRanks
        let n = piece.count
        var symbols = piece.map { tokenizer.byteIDs[Int($0)] }
        var next = Array(1...n)          // n = none
        var previous = Array(-1..<(n - 1))  // −1 = none
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        for i in 0..<(n - 1) {
            if let rank = table.value(PairMap<Int32>.key(symbols[i], symbols[i + 1]))?.rank { heap.push(rank, i) }
        }
        while let (rank, position) = heap.pop() {
            guard alive[position], next[position] < n else { continue }
            let right = next[position]
            guard let entry = table.value(PairMap<Int32>.key(symbols[position], symbols[right])), entry.rank == rank else { continue }
            symbols[position] = entry.result
            alive[right] = false
            next[position] = next[right]
            if next[right] < n { previous[next[right]] = position }
            if previous[position] >= 0, let left = table.value(PairMap<Int32>.key(symbols[previous[position]], symbols[position])) {
                heap.push(left.rank, previous[position])
            }
            if next[position] < n, let after = table.value(PairMap<Int32>.key(symbols[position], symbols[next[position]])) {
                heap.push(after.rank, position)
            }
        }
        var position = 0
        while position < n {
            ids.append(symbols[position])
            position = next[position]
        }
    }

    /// A binary min-heap of (rank, position), ties to the lower position (leftmost first).
    struct MinHeap {
        private var items: [(rank: Int32, position: Int)] = []

        @inline(__always)
        private func less(_ a: (rank: Int32, position: Int), _ b: (rank: Int32, position: Int)) -> Bool {
            a.rank < b.rank || (a.rank == b.rank && a.position < b.position)
        }

        mutating func push(_ rank: Int32, _ position: Int) {
            items.append((rank, position))
            var child = items.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard less(items[child], items[parent]) else { break }
                items.swapAt(child, parent)
                child = parent
            }
        }

        mutating func pop() -> (Int32, Int)? {
            guard let top = items.first else { return nil }
            let last = items.removeLast()
            if !items.isEmpty {
                items[0] = last
                var parent = 0
                while true {
                    let left = 2 * parent + 1, right = left + 1
                    var smallest = parent
                    if left < items.count && less(items[left], items[smallest]) { smallest = left }
                    if right < items.count && less(items[right], items[smallest]) { smallest = right }
                    if smallest == parent { break }
                    items.swapAt(parent, smallest)
                    parent = smallest
                }
            }
            return (top.rank, top.position)
        }
    }
}
