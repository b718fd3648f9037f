/// Finds special tokens in text, longest first at each position, so that overlapping tokens
/// (`<|endoftext|>` and `<|endoftext|><|endoftext|>`) resolve to the longest one present.
struct SpecialTokenMatcher: Sendable {
    /// (bytes, id), longest first.
    let tokens: [([UInt8], Int32)]
    private let startsToken: [Bool]
    let longest: Int

    init(_ tokens: [(String, Int32)]) {
        self.tokens = tokens.map { (Array($0.0.utf8), $0.1) }.sorted { $0.0.count > $1.0.count }
        var starts = [Bool](repeating: false, count: 256)
        for (bytes, _) in self.tokens where !bytes.isEmpty { starts[Int(bytes[0])] = true }
        startsToken = starts
        longest = self.tokens.first?.0.count ?? 0
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// The special token starting exactly at `index`: its id and length.
    @inline(__always)
    func match(_ text: UnsafeBufferPointer<UInt8>, at index: Int) -> (id: Int32, length: Int)? {
        guard startsToken[Int(text[index])] else { return nil }
        for (bytes, id) in tokens where bytes.count <= text.count - index {
            var equal = true
            for offset in 0..<bytes.count where text[index + offset] != bytes[offset] {
                equal = false
                break
            }
            if equal { return (id, bytes.count) }
        }
        return nil
    }

    /// Calls `text` for each stretch of ordinary text and `special` for each special token, in order.
    func split(_ text: UnsafeBufferPointer<UInt8>, text onText: (Range<Int>) -> Void, special onSpecial: (Int32) -> Void) {
        guard !isEmpty else {
            if !text.isEmpty { onText(0..<text.count) }
            return
        }
        var segmentStart = 0
        var index = 0
        while index < text.count {
            if let (id, length) = match(text, at: index) {
                if segmentStart < index { onText(segmentStart..<index) }
                onSpecial(id)
                index += length
                segmentStart = index
            } else {
                index += 1
            }
        }
        if segmentStart < text.count { onText(segmentStart..<text.count) }
    }

    /// Length of the longest suffix of `text` that is a proper prefix of some special token:
    /// text a streaming reader must hold back, since the token may complete in the next block.
    func pendingSuffix(_ text: UnsafeBufferPointer<UInt8>) -> Int {
        guard longest > 1 else { return 0 }
        for length in stride(from: min(longest - 1, text.count), through: 1, by: -1) {
            let start = text.count - length
            for (bytes, _) in tokens where bytes.count > length {
                if (0..<length).allSatisfy({ text[start + $0] == bytes[$0] }) { return length }
            }
        }
        return 0
    }

    /// True when some special token occurrence covers both `index − 1` and `index`, so cutting
    /// the text at `index` would break it.
    func spans(_ text: UnsafeBufferPointer<UInt8>, cut index: Int) -> Bool {
        guard longest > 1 else { return false }
        for start in max(0, index - longest + 1)..<index {
            if let (_, length) = match(text, at: start), start + length > index { return true }
        }
        return false
    }
}
