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

    /// Appends the ids of `text` (valid UTF-8) to `ids`; special tokens written in it are those
    /// tokens unless `parsingSpecialTokens` is false.
    public func encode(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32], parsingSpecialTokens: Bool = true) {
        guard parsingSpecialTokens else { return encodeOrdinary(text, 0..<text.count, into: &ids) }
        tokenizer.specials.split(text, text: { encodeOrdinary(text, $0, into: &ids) }, special: { ids.append($0) })
    }

    /// Text without special tokens: pre-tokenized, then each piece merged.
    private func encodeOrdinary(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into ids: inout [Int32]) {
        let segment = UnsafeBufferPointer(rebasing: text[range])
        tokenizer.rules.preTokenization.forEachPiece(in: segment) { piece in
            encodePiece(UnsafeBufferPointer(rebasing: segment[piece]), into: &ids)
        }
    }

    /// One pre-tokenized piece: a whole-vocabulary hit, a cache hit, or the merge loop.
    @inline(__always)
    func encodePiece(_ piece: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        if piece.count == 1 {
            let id = tokenizer.byteIDs[Int(piece[0])]
            if id >= 0 { ids.append(id) }
            return
        }
        let cacheable = piece.count <= Self.longestCachedPiece
        let hash = FastHash.bytes(piece)
        if cacheable, let hit = cache.value(for: piece, hash: hash) {
            ids.append(contentsOf: cachedIDs[Int(hit.start)..<Int(hit.start + hit.count)])
            return
        }
        let first = ids.count
        // A piece that is itself a token is that token (tiktoken does the same), when the rules
        // say so.
        if tokenizer.rules.ignoresMerges, let whole = tokenizer.idForBytes.value(for: piece, hash: hash) {
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

    /// The ids of `text` from this encoder alone (tests compare it with shared-tokenizer paths).
    func encodeForTesting(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        var copy = text
        copy.withUTF8 { encode($0, into: &ids) }
        return ids
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
        for symbol in symbols where symbol >= 0 { ids.append(symbol) }
    }
}

/// Byte-pair merging in O(n log n) for long pieces (a megabyte of one letter is one piece):
/// symbols in a linked list over their original positions, candidate pairs in a min-heap keyed
/// `rank << 32 | position` (lowest rank first, then leftmost), stale candidates skipped when
/// popped. The result equals the scan in ``Encoder``.
enum HeapMerge {
    static func merge(_ piece: UnsafeBufferPointer<UInt8>, tokenizer: Tokenizer, into ids: inout [Int32]) {
        let table = tokenizer.mergeRanks
        let n = piece.count
        let symbols = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n)
        let next = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n)      // n = none
        let previous = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n)  // −1 = none
        defer {
            symbols.deallocate()
            next.deallocate()
            previous.deallocate()
        }
        for i in 0..<n {
            symbols[i] = tokenizer.byteIDs[Int(piece[i])]
            next[i] = Int32(i + 1)
            previous[i] = Int32(i - 1)
        }
        var initial: [UInt64] = []
        initial.reserveCapacity(n)
        for i in 0..<(n - 1) {
            if let entry = table.value(PairMap<Int32>.key(symbols[i], symbols[i + 1])) {
                initial.append(UInt64(UInt32(entry.rank)) << 32 | UInt64(UInt32(i)))
            }
        }
        var heap = MinHeap(initial)
        // The pair starting at `left`, as a heap key, when it can merge (a plain function rather
        // than a closure over `heap`, which would add dynamic exclusivity checks to every push).
        func candidateKey(_ left: Int32) -> UInt64? {
            let right = next[Int(left)]
            guard right < n, let entry = table.value(PairMap<Int32>.key(symbols[Int(left)], symbols[Int(right)])) else { return nil }
            return UInt64(UInt32(entry.rank)) << 32 | UInt64(UInt32(left))
        }
        while let top = heap.pop() {
            let rank = Int32(truncatingIfNeeded: top >> 32), left = Int32(truncatingIfNeeded: top & 0xFFFF_FFFF)
            // Stale when the left symbol was absorbed (previous link cut) or the pair changed.
            let right = next[Int(left)]
            guard symbols[Int(left)] >= 0, right < n,
                  let entry = table.value(PairMap<Int32>.key(symbols[Int(left)], symbols[Int(right)])), entry.rank == rank else { continue }
            symbols[Int(left)] = entry.result
            symbols[Int(right)] = -1  // absorbed
            next[Int(left)] = next[Int(right)]
            if next[Int(right)] < n { previous[Int(next[Int(right)])] = left }
            if previous[Int(left)] >= 0, let key = candidateKey(previous[Int(left)]) { heap.push(key) }
            if let key = candidateKey(left) { heap.push(key) }
        }
        var position = 0
        while position < n {
            if symbols[position] >= 0 { ids.append(symbols[position]) }
            position = Int(next[position])
        }
    }

    /// A binary min-heap of packed (rank, position) keys.
    struct MinHeap {
        private var items: [UInt64] = []

        /// Builds the heap from `initial` in linear time (Floyd).
        init(_ initial: [UInt64]) {
            items = initial
            items.withUnsafeMutableBufferPointer { heap in
                for start in stride(from: heap.count / 2 - 1, through: 0, by: -1) { Self.siftDown(heap, from: start) }
            }
        }

        private static func siftDown(_ heap: UnsafeMutableBufferPointer<UInt64>, from start: Int) {
            var parent = start
            let count = heap.count
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < count && heap[left] < heap[smallest] { smallest = left }
                if right < count && heap[right] < heap[smallest] { smallest = right }
                if smallest == parent { return }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }

        mutating func push(_ item: UInt64) {
            items.append(item)
            items.withUnsafeMutableBufferPointer { heap in
                var child = heap.count - 1
                while child > 0 {
                    let parent = (child - 1) / 2
                    guard heap[child] < heap[parent] else { break }
                    heap.swapAt(child, parent)
                    child = parent
                }
            }
        }

        mutating func pop() -> UInt64? {
            guard let top = items.first else { return nil }
            let last = items.removeLast()
            guard !items.isEmpty else { return top }
            items.withUnsafeMutableBufferPointer { heap in
                heap[0] = last
                Self.siftDown(heap, from: 0)
            }
            return top
        }
    }
}
