/// Which token ids each of a ``BatchDecoder``'s slots holds, so that a slot keeps its prompt and
/// answer after its request ends and a new request reuses the longest prefix it shares with one:
/// the same system prompt (or the conversation so far) is not prefilled again. A free slot is
/// chosen by the longest common prefix with the new prompt; among equals (none shared, say) the
/// one used longest ago, so recent prefixes stay for the requests likely to want them.
struct PromptCache {
    /// The ids in each slot's KV cache, position by position.
    private(set) var tokens: [[Int32]]
    private var free: Set<Int>
    /// When each slot was last taken (a counter), for least-recently-used choices.
    private var lastTaken: [Int]
    private var clock = 0

    init(slots: Int) {
        tokens = Array(repeating: [], count: slots)
        free = Set(0..<slots)
        lastTaken = Array(repeating: 0, count: slots)
    }

    var freeCount: Int { free.count }

    /// Takes the free slot sharing the longest prefix with `prompt` (non-empty), and how many of
    /// its leading ids can be reused: at most `prompt.count − 1`, since the last prompt token must
    /// run to give the first logits. Nil when no slot is free.
    mutating func take(for prompt: [Int32]) -> (slot: Int, shared: Int)? {
        var best: (slot: Int, shared: Int)?
        for slot in free.sorted() {
            let shared = min(zip(tokens[slot], prompt).prefix { $0 == $1 }.count, prompt.count - 1)
            if let current = best, shared < current.shared || (shared == current.shared && lastTaken[slot] >= lastTaken[current.slot]) { continue }
            best = (slot, shared)
        }
        guard let best else { return nil }
        free.remove(best.slot)
        clock += 1
        lastTaken[best.slot] = clock
        return best
    }

    /// `slot` holds its first `count` ids only (the cache was rewound there).
    mutating func keep(_ count: Int, in slot: Int) { tokens[slot].removeLast(tokens[slot].count - min(count, tokens[slot].count)) }

    /// `ids` were written to `slot`'s cache after what it held.
    mutating func append(_ ids: some Sequence<Int32>, to slot: Int) { tokens[slot].append(contentsOf: ids) }

    /// `slot` is free again, its ids kept for the next request.
    mutating func release(_ slot: Int) { free.insert(slot) }

    /// `slot` is free again and holds nothing (its cache was reset, or a step failed half-way).
    mutating func releaseEmpty(_ slot: Int) {
        tokens[slot] = []
        free.insert(slot)
    }
}
