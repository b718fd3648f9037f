/// Places where text can be cut without changing its encoding: the pieces of the two sides,
/// each pre-tokenized alone, are exactly the pieces of the whole text.
///
/// **The rule** (GPT-2's; the other ``PreTokenization`` rules are checked by
/// ``PreTokenization/allowsCut(_:at:)``). Let X be the scalar that ends at byte `i` and Y the scalar that starts there.
/// Cutting at `i` is safe when X is not whitespace, X is not the apostrophe U+0027, and Y's
/// class (letter, number, whitespace, other; see ``ScalarClass``) differs from X's.
///
/// **Why it holds.** GPT-2's pattern is matched left to right, and an attempt at a position only
/// reads forward, so two things suffice: (1) `i` is a piece boundary of the whole text, and
/// (2) every attempt that starts before `i` ends the same way when the text stops at `i`.
/// - (1): no alternative matches across X→Y. The runs `\p{L}+`, `\p{N}+`, `[^\s\p{L}\p{N}]+`
///   stay within one class, and Y's class differs; their optional leading space is not X, since
///   X is not whitespace; the whitespace alternatives cannot hold X; a contraction containing X
///   and Y would need X to be `'` (excluded) or X and Y both letters (`'ll`, `'ve`, `'re`:
///   same class, excluded).
/// - (2): an attempt that reads Y reads it as the scalar that stops a run (a different class
///   stops it, and so does the end of the text), as the third letter of a contraction (`'l`,
///   `'v`, `'r` followed by Y: Y would have to be a letter like X, excluded), as the second
///   character of a contraction (X would be `'`, excluded), or as the lookahead of
///   `\s+(?!\S)` (the run would end at X, which is not whitespace). In each case Y and the end
///   of the text give the same outcome.
///
/// Cuts *after* whitespace are never taken: `\n\n*` is the pieces `\n`, `\n`, `*`, but `\n\n`
/// alone is one piece, because at the end of the text `\s+(?!\S)` no longer has to give back
/// its last scalar.
///
/// Special tokens are split out before pre-tokenization, so the start of a special token is a
/// safe place too, and no cut may fall inside one. Text with no safe place at all (a megabyte
/// of one letter, or of whitespace) stays in one piece.
enum SafeCuts {
    /// Splits `text` into about `count` ranges of at least `minimumChunk` bytes at safe places.
    static func chunks(_ text: UnsafeBufferPointer<UInt8>, count: Int, minimumChunk: Int, specials: SpecialTokenMatcher,
                       rules: PreTokenization = .gpt2) -> [Range<Int>] {
        let target = max(minimumChunk, text.count / max(count, 1))
        var ranges: [Range<Int>] = []
        var start = 0
        while text.count - start > target + minimumChunk / 2 {
            guard let cut = safeCut(text, from: start + target, specials: specials, rules: rules) else { break }
            ranges.append(start..<cut)
            start = cut
        }
        ranges.append(start..<text.count)
        return ranges
    }

    /// The first safe cut at or after `index`, or nil.
    static func safeCut(_ text: UnsafeBufferPointer<UInt8>, from index: Int, specials: SpecialTokenMatcher, rules: PreTokenization = .gpt2) -> Int? {
        var i = max(index, 1)
        while i < text.count {
            if isSafe(text, at: i, specials: specials, rules: rules) { return i }
            i += 1
        }
        return nil
    }

    /// The last safe cut in `range` (positions strictly inside `text`), or nil.
    static func lastSafeCut(_ text: UnsafeBufferPointer<UInt8>, in range: Range<Int>, specials: SpecialTokenMatcher, rules: PreTokenization = .gpt2) -> Int? {
        var i = min(range.upperBound, text.count) - 1
        let lowest = max(range.lowerBound, 1)
        while i >= lowest {
            if isSafe(text, at: i, specials: specials, rules: rules) { return i }
            i -= 1
        }
        return nil
    }

    /// Whether cutting `text` at byte `i` (0 < i < count) is safe: the rule above, or the start
    /// of a special token; in both cases not inside a special token.
    @inline(__always)
    static func isSafe(_ text: UnsafeBufferPointer<UInt8>, at i: Int, specials: SpecialTokenMatcher, rules: PreTokenization = .gpt2) -> Bool {
        guard isScalarStart(text[i]) else { return false }
        if specials.isEmpty { return rules.allowsCut(text, at: i) }
        guard rules.allowsCut(text, at: i) || specials.match(text, at: i) != nil else { return false }
        return !specials.spans(text, cut: i)
    }

    @inline(__always)
    static func isScalarStart(_ byte: UInt8) -> Bool { byte & 0xC0 != 0x80 }
}
