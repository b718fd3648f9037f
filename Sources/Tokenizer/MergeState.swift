/// The training state between merges: each distinct piece as a list of symbol ids with its
/// count, the count of every adjacent pair, which words contain each pair, and a max-heap of
/// pairs by count (stale entries skipped when popped).
struct MergeState {
    private var words: [[Int32]] = []
    private var weights: [Int64] = []
    private var pairIndex = PairMap<Int32>(capacity: 1 << 16)
    private var pairLeft: [Int32] = [], pairRight: [Int32] = []
    private var pairCount: [Int64] = []
    private var pairWords: [[Int32]] = []
    private var heap: [(count: Int64, pair: Int32)] = []
    // Scratch for one merge.
    private var delta: [Int64] = []
    private var touched: [Int32] = []
    private var lastMergeOfWord: [Int32] = []
    private var mergeNumber: Int32 = 0

    init(counts: ByteStringMap<UInt64>, byteID: [Int32]) {
        counts.forEach { bytes, count in
            words.append(bytes.map { byteID[Int($0)] })
            weights.append(Int64(count))
        }
        lastMergeOfWord = [Int32](repeating: -1, count: words.count)
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let p = pair(word[i], word[i + 1])
                pairCount[Int(p)] += weights[w]
                if pairWords[Int(p)].last != Int32(w) { pairWords[Int(p)].append(Int32(w)) }
            }
        }
        heap = pairCount.indices.filter { pairCount[$0] > 0 }.map { (pairCount[$0], Int32($0)) }
    }

    /// The index of pair (a, b), created with count 0 when new.
    private mutating func pair(_ a: Int32, _ b: Int32) -> Int32 {
        let key = PairMap<Int32>.key(a, b)
        if let existing = pairIndex.value(key) { return existing }
        let index = Int32(pairCount.count)
        pairIndex[key] = index
        pairLeft.append(a)
        pairRight.append(b)
        pairCount.append(0)
        pairWords.append([])
        delta.append(0)
        return index
    }

    /// The most frequent pair, ties to the lexicographically greater (left bytes, right bytes);
    /// nil when no pair occurs any more.
    mutating func bestPair(vocabulary: [[UInt8]]) -> (Int32, Int32)? {
        if !heapBuilt {
            buildHeap(vocabulary)
            heapBuilt = true
        }
        flushPushes(vocabulary)
        while let top = heap.first {
            if top.count == pairCount[Int(top.pair)] && top.count > 0 {
                return (pairLeft[Int(top.pair)], pairRight[Int(top.pair)])
            }
            popTop(vocabulary)  // stale: the count changed since this entry was pushed
        }
        return nil
    }

    private var heapBuilt = false

    /// Replaces every occurrence of (left, right) with `newID` in the words that contain it and
    /// updates the pair counts by the difference.
    mutating func merge(_ left: Int32, _ right: Int32, into newID: Int32) {
        mergeNumber += 1
        let merged = pairIndex.value(PairMap<Int32>.key(left, right))!
        let candidates = pairWords[Int(merged)]
        for w in candidates where lastMergeOfWord[Int(w)] != mergeNumber {
            lastMergeOfWord[Int(w)] = mergeNumber
            let word = words[Int(w)]
            var occurs = false
            for i in 0..<(word.count - 1) where word[i] == left && word[i + 1] == right {
                occurs = true
                break
            }
            guard occurs else { continue }  // a stale entry: an earlier merge took the pair
            let weight = weights[Int(w)]
            for i in 0..<(word.count - 1) { addDelta(pair(word[i], word[i + 1]), -weight) }
            var rebuilt: [Int32] = []
            rebuilt.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i + 1 < word.count && word[i] == left && word[i + 1] == right {
                    rebuilt.append(newID)
                    i += 2
                } else {
                    rebuilt.append(word[i])
                    i += 1
                }
            }
            for i in 0..<(rebuilt.count - 1) where rebuilt.count > 1 {
                let p = pair(rebuilt[i], rebuilt[i + 1])
                addDelta(p, weight)
                if (rebuilt[i] == newID || rebuilt[i + 1] == newID) && pairWords[Int(p)].last != w { pairWords[Int(p)].append(w) }
            }
            words[Int(w)] = rebuilt
        }
        pairWords[Int(merged)] = []
        for p in touched {
            let change = delta[Int(p)]
            delta[Int(p)] = 0
            guard change != 0 else { continue }
            pairCount[Int(p)] += change
            if pairCount[Int(p)] > 0 { pendingPushes.append(p) }
        }
        touched.removeAll(keepingCapacity: true)
    }

    /// Pairs whose count changed, pushed at the next `bestPair` (which has the vocabulary for
    /// tie-breaking).
    private var pendingPushes: [Int32] = []

    @inline(__always)
    private mutating func addDelta(_ p: Int32, _ amount: Int64) {
        if delta[Int(p)] == 0 { touched.append(p) }
        delta[Int(p)] += amount
        // A delta that returns to zero stays in `touched`; it is skipped when applied.
    }

    // MARK: - Heap (max by count, then by the greater byte strings)

    private func higher(_ a: (count: Int64, pair: Int32), _ b: (count: Int64, pair: Int32), _ vocabulary: [[UInt8]]) -> Bool {
        if a.count != b.count { return a.count > b.count }
        let (aLeft, bLeft) = (vocabulary[Int(pairLeft[Int(a.pair)])], vocabulary[Int(pairLeft[Int(b.pair)])])
        if aLeft != bLeft { return aLeft.lexicographicallyPrecedes(bLeft) == false }
        let (aRight, bRight) = (vocabulary[Int(pairRight[Int(a.pair)])], vocabulary[Int(pairRight[Int(b.pair)])])
        return bRight.lexicographicallyPrecedes(aRight)
    }

    private mutating func buildHeap(_ vocabulary: [[UInt8]]) {
        for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(index, vocabulary) }
    }

    private mutating func popTop(_ vocabulary: [[UInt8]]) {
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0, vocabulary)
        }
    }

    private mutating func flushPushes(_ vocabulary: [[UInt8]]) {
        for p in pendingPushes { push((pairCount[Int(p)], p), vocabulary) }
        pendingPushes.removeAll(keepingCapacity: true)
    }

    private mutating func push(_ item: (count: Int64, pair: Int32), _ vocabulary: [[UInt8]]) {
        heap.append(item)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard higher(heap[child], heap[parent], vocabulary) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int, _ vocabulary: [[UInt8]]) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var best = parent
            if left < heap.count && higher(heap[left], heap[best], vocabulary) { best = left }
            if right < heap.count && higher(heap[right], heap[best], vocabulary) { best = right }
            if best == parent { return }
            heap.swapAt(parent, best)
            parent = best
        }
    }
}
