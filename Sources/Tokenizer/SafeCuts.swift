/// Places where text can be cut without changing its encoding: the pieces on both sides are
/// exactly those of the whole text.
///
/// Cutting at index `i` is safe when `text[i − 1]` is whitespace other than the space U+0020
/// and `text[i]` is not whitespace: only the whitespace alternatives of the GPT-2 pattern can
/// contain a non-space whitespace scalar, and they never reach a non-whitespace one, so a
/// piece always ends at `i`. The cut must also not fall inside a special token. Text with no
/// such place (a megabyte of one letter) stays in one chunk. The start of a special token is
/// also safe: special tokens are split out before pre-tokenization.
enum SafeCuts {
    /// Splits `text` into about `count` ranges of at least `minimumChunk` bytes at safe places.
    static func chunks(_ text: UnsafeBufferPointer<UInt8>, count: Int, minimumChunk: Int, specials: SpecialTokenMatcher) -> [Range<Int>] {
        let target = max(minimumChunk, text.count / max(count, 1))
        var ranges: [Range<Int>] = []
        var start = 0
        while text.count - start > target + minimumChunk / 2 {
            guard let cut = safeCut(text, from: start + target, specials: specials) else { break }
            ranges.append(start..<cut)
            start = cut
        }
        ranges.append(start..<text.count)
        return ranges
    }

    /// The first safe cut at or after `index`, or nil.
    static func safeCut(_ text: UnsafeBufferPointer<UInt8>, from index: Int, specials: SpecialTokenMatcher) -> Int? {
        var i = max(index, 1)
        while i < text.count {
            // ASCII control whitespace (\n, \r, \t, \v, \f) covers natural text; the rule holds
            // for them without decoding.
            // The start of a special token ends the text segment before it.
            if !specials.isEmpty, specials.match(text, at: i) != nil, !specials.spans(text, cut: i) { return i }
            let before = text[i - 1]
            if before >= 0x09 && before <= 0x0D {
                let (kind, _) = PreTokenizer.classAt(text, i)
                if kind != .whitespace && isScalarStart(text[i]) && !specials.spans(text, cut: i) { return i }
            }
            i += 1
        }
        return nil
    }

    @inline(__always)
    static func isScalarStart(_ byte: UInt8) -> Bool { byte & 0xC0 != 0x80 }
}
