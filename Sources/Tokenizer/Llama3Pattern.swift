/// Llama 3's pre-tokenization, hand-compiled as llama.cpp compiles it:
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
/// and Qwen 2's (Qwen 2.5, Qwen 3), the same pattern with `\p{N}` for `\p{N}{1,3}`, given
/// `digitsPerPiece` 1.
///
/// It differs from GPT-2's in four places: contractions in either case, a letter run may take
/// any one non-letter, non-number, non-newline scalar in front (`(word`, a tab), numbers come in
/// groups of at most `digitsPerPiece` from the left (3 for Llama 3, 1 for Qwen 2), and
/// whitespace ending in newlines is cut after the last newline.
enum Llama3Pattern {
    static func forEachPiece(in text: UnsafeBufferPointer<UInt8>, digitsPerPiece: Int = 3, _ body: (Range<Int>) -> Void) {
        var start = 0
        while start < text.count {
            let length = pieceLength(text, at: start, digitsPerPiece: digitsPerPiece)
            body(start..<(start + length))
            start += length
        }
    }

    @inline(__always)
    private static func isNewline(_ byte: UInt8) -> Bool { byte == 0x0A || byte == 0x0D }

    /// The ASCII letter at `index` in lower case, or 0.
    @inline(__always)
    private static func lowerASCII(_ text: UnsafeBufferPointer<UInt8>, _ index: Int) -> UInt8 {
        guard index < text.count else { return 0 }
        let byte = text[index]
        return (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    static func pieceLength(_ text: UnsafeBufferPointer<UInt8>, at start: Int, digitsPerPiece: Int) -> Int {
        let end = text.count
        let first = text[start]
        // 1. Contractions, either case.
        if first == UInt8(ascii: "'") {
            let second = lowerASCII(text, start + 1), third = lowerASCII(text, start + 2)
            if [UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d")].contains(second) { return 2 }
            if (second == UInt8(ascii: "r") && third == UInt8(ascii: "e")) || (second == UInt8(ascii: "v") && third == UInt8(ascii: "e"))
                || (second == UInt8(ascii: "l") && third == UInt8(ascii: "l")) { return 3 }
        }
        let (kind, length) = PreTokenizer.classAt(text, start)
        // 2. [^\r\n\p{L}\p{N}]?\p{L}+
        if !isNewline(first) && kind != .number {
            let letterStart = kind == .letter ? start : start + length
            if letterStart < end, PreTokenizer.classAt(text, letterStart).0 == .letter {
                var index = letterStart
                while index < end {
                    let (next, nextLength) = PreTokenizer.classAt(text, index)
                    if next != .letter { break }
                    index += nextLength
                }
                return index - start
            }
        }
        // 3. \p{N}{1,3} (Llama 3), \p{N} (Qwen 2)
        if kind == .number {
            var index = start, count = 0
            while index < end && count < digitsPerPiece {
                let (next, nextLength) = PreTokenizer.classAt(text, index)
                if next != .number { break }
                index += nextLength
                count += 1
            }
            return index - start
        }
        // 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var index = start
        if first == UInt8(ascii: " "), start + 1 < end { index += 1 }
        if PreTokenizer.classAt(text, index).0 == .other {
            while index < end {
                let (next, nextLength) = PreTokenizer.classAt(text, index)
                if next != .other { break }
                index += nextLength
            }
            while index < end && isNewline(text[index]) { index += 1 }
            return index - start
        }
        // 5–7. Whitespace: through the last newline of the run (\s*[\r\n]+); else the run less
        // its last scalar when something follows (\s+(?!\S)); else the whole run (\s+).
        index = start
        var lastStart = start, afterNewline = -1
        while index < end {
            let (next, nextLength) = PreTokenizer.classAt(text, index)
            if next != .whitespace { break }
            if isNewline(text[index]) { afterNewline = index + 1 }
            lastStart = index
            index += nextLength
        }
        if index == start { return length }  // not reached: every class is handled above
        if afterNewline > 0 { return afterNewline - start }
        if index == end || lastStart == start { return index - start }
        return lastStart - start
    }
}
