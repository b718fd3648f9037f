/// llama.cpp's `tokenizer_st_partition`: the special texts of a vocabulary (control, user-defined
/// and unknown tokens) cut out of text before it is encoded, in llama.cpp's order.
///
/// llama.cpp takes the tokens one at a time, longest text first, and each takes every leftmost,
/// non-overlapping occurrence in the text earlier tokens left uncut. That differs from matching
/// the longest token at each position when occurrences overlap (tokens `ab` and `bcd` in `abcd`:
/// llama.cpp cuts `bcd`). Scanning the text once per token would cost the token count (6,400 for
/// Gemma 3) times the text, so occurrences are found in one pass with a trie and only a text
/// whose occurrences overlap is resolved in llama.cpp's order.
struct SpecialTokenPartition: Sendable {
    /// One special text.
    struct Token: Sendable {
        let id: Int32
        let length: Int
        /// Only cut out when special tokens are parsed (control and unknown tokens); user-defined
        /// tokens are always cut out, as llama.cpp does with `parse_special = false`.
        let needsSpecialParsing: Bool
    }

    /// Tokens in llama.cpp's order: longest first, then by id (llama.cpp's `std::sort` leaves
    /// equal lengths in an unspecified order; they can only conflict when one text overlaps
    /// another of the same length, which no published vocabulary has).
    let tokens: [Token]
    /// The trie over the tokens' bytes: the child of a node by a byte, keyed (node, byte).
    private let children: PairMap<Int32>
    /// The root's children by byte, -1 when none (the first step is the hot one).
    private let rootChildren: [Int32]
    /// node → index in `tokens` of the token ending there, or -1.
    private let tokenAtNode: [Int32]

    /// `texts` are (bytes, id, needs special parsing); empty texts are left out.
    init(_ texts: [(bytes: [UInt8], id: Int32, needsSpecialParsing: Bool)]) {
        let sorted = texts.filter { !$0.bytes.isEmpty }
            .sorted { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        tokens = sorted.map { Token(id: $0.id, length: $0.bytes.count, needsSpecialParsing: $0.needsSpecialParsing) }
        var children = PairMap<Int32>(capacity: sorted.reduce(0) { $0 + $1.bytes.count })
        var rootChildren = [Int32](repeating: -1, count: 256)
        var tokenAtNode: [Int32] = [-1]
        for (index, text) in sorted.enumerated() {
            var node: Int32 = 0
            for byte in text.bytes {
                let key = PairMap<Int32>.key(node, Int32(byte))
                let existing = node == 0 ? rootChildren[Int(byte)] : (children.value(key) ?? -1)
                if existing >= 0 {
                    node = existing
                    continue
                }
                let child = Int32(tokenAtNode.count)
                tokenAtNode.append(-1)
                if node == 0 { rootChildren[Int(byte)] = child } else { children[key] = child }
                node = child
            }
            // A text listed twice keeps its first (llama.cpp's second copy finds nothing left).
            if tokenAtNode[Int(node)] < 0 { tokenAtNode[Int(node)] = Int32(index) }
        }
        self.children = children
        self.rootChildren = rootChildren
        self.tokenAtNode = tokenAtNode
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// An occurrence: its start, and the token's index in ``tokens`` (its priority).
    private struct Occurrence {
        let start: Int
        let token: Int32
    }

    /// Calls `text` for each stretch of ordinary text and `special` for each special token, in
    /// order. Control and unknown tokens are only cut out when `parsingSpecialTokens`.
    func split(_ text: UnsafeBufferPointer<UInt8>, parsingSpecialTokens: Bool, text onText: (Range<Int>) -> Void,
               special onSpecial: (Int32) -> Void) {
        var found: [Occurrence] = []
        var overlapping = false, foundEnd = 0
        for start in 0..<text.count {
            var node = rootChildren[Int(text[start])]
            var index = start + 1
            while node >= 0 {
                let token = tokenAtNode[Int(node)]
                if token >= 0 && (parsingSpecialTokens || !tokens[Int(token)].needsSpecialParsing) {
                    if start < foundEnd { overlapping = true }
                    foundEnd = max(foundEnd, index)
                    found.append(Occurrence(start: start, token: token))
                }
                guard index < text.count else { break }
                node = children.value(PairMap<Int32>.key(node, Int32(text[index]))) ?? -1
                index += 1
            }
        }
        if overlapping { found = resolve(found, count: text.count) }
        var segmentStart = 0
        for occurrence in found {
            if segmentStart < occurrence.start { onText(segmentStart..<occurrence.start) }
            let token = tokens[Int(occurrence.token)]
            onSpecial(token.id)
            segmentStart = occurrence.start + token.length
        }
        if segmentStart < text.count { onText(segmentStart..<text.count) }
    }

    /// llama.cpp's order on overlapping occurrences: token by token in priority order, each
    /// occurrence left to right kept when none of its bytes is already cut out. Returns the kept
    /// ones by position.
    private func resolve(_ found: [Occurrence], count: Int) -> [Occurrence] {
        let ordered = found.sorted { $0.token != $1.token ? $0.token < $1.token : $0.start < $1.start }
        var taken = [Bool](repeating: false, count: count)
        var kept: [Occurrence] = []
        for occurrence in ordered {
            let range = occurrence.start..<(occurrence.start + tokens[Int(occurrence.token)].length)
            guard !taken[range].contains(true) else { continue }
            for index in range { taken[index] = true }
            kept.append(occurrence)
        }
        return kept.sorted { $0.start < $1.start }
    }
}
