/// GPT-2's pre-tokenization, hand-compiled: splits UTF-8 text into the pieces matched by
/// `'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
/// scanning Unicode scalars (never `Character`s) left to right in linear time.
///
/// Input must be valid UTF-8 (validated where text enters the tokenizer).
public enum PreTokenizer {
    /// Calls `body` with the byte range of each piece of `text`, in order.
    public static func forEachPiece(in text: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Void) {
        var start = 0
        let end = text.count
        while start < end {
            let length = pieceLength(text, at: start)
            body(start..<(start + length))
            start += length
        }
    }

    /// The pieces of `text` as byte arrays (convenient for tests and small inputs).
    public static func pieces(_ text: String) -> [[UInt8]] {
        var bytes = Array(text.utf8)
        var result: [[UInt8]] = []
        bytes.withUnsafeMutableBufferPointer { buffer in
            let view = UnsafeBufferPointer(buffer)
            forEachPiece(in: view) { result.append(Array(view[$0])) }
        }
        return result
    }

    /// Decodes the scalar at `index`: its value and its length in bytes.
    @inline(__always)
    static func scalar(_ text: UnsafeBufferPointer<UInt8>, _ index: Int) -> (value: UInt32, length: Int) {
        let lead = UInt32(text[index])
        if lead < 0x80 { return (lead, 1) }
        if lead < 0xE0 { return ((lead & 0x1F) << 6 | UInt32(text[index + 1] & 0x3F), 2) }
        if lead < 0xF0 {
            return ((lead & 0x0F) << 12 | UInt32(text[index + 1] & 0x3F) << 6 | UInt32(text[index + 2] & 0x3F), 3)
        }
        return ((lead & 0x07) << 18 | UInt32(text[index + 1] & 0x3F) << 12 | UInt32(text[index + 2] & 0x3F) << 6
                | UInt32(text[index + 3] & 0x3F), 4)
    }

    /// The class of the scalar at `index` and its length; ASCII without a table lookup.
    @inline(__always)
    static func classAt(_ text: UnsafeBufferPointer<UInt8>, _ index: Int) -> (ScalarClass, Int) {
        let byte = text[index]
        if byte < 0x80 { return (asciiClass[Int(byte)], 1) }
        let (value, length) = scalar(text, index)
        return (ScalarClass.of(value), length)
    }


    static let asciiClass: [ScalarClass] = (0..<128).map { ScalarClass.classify(Unicode.Scalar(UInt8($0))) }

    /// Length in bytes of the piece starting at `start` (which is < text.count).
    static func pieceLength(_ text: UnsafeBufferPointer<UInt8>, at start: Int) -> Int {
        let end = text.count
        let first = text[start]

        // 1. Contractions: 's 'd 'm 't 'll 've 're (lowercase only).
        if first == UInt8(ascii: "'"), start + 1 < end {
            let second = text[start + 1]
            switch second {
            case UInt8(ascii: "s"), UInt8(ascii: "d"), UInt8(ascii: "m"), UInt8(ascii: "t"):
                return 2
            case UInt8(ascii: "l"), UInt8(ascii: "v"), UInt8(ascii: "r"):
                if start + 2 < end {
                    let third = text[start + 2]
                    if (second == UInt8(ascii: "l") && third == UInt8(ascii: "l"))
                        || (second != UInt8(ascii: "l") && third == UInt8(ascii: "e")) {
                        return 3
                    }
                }
            default:
                break
            }
        }

        // 2–4. An optional space, then a run of letters, of numbers, or of other non-space.
        var index = start
        if first == UInt8(ascii: " "), start + 1 < end { index += 1 }
        let (kind, length) = classAt(text, index)
        if kind != .whitespace {
            index += length
            while index < end {
                let (next, nextLength) = classAt(text, index)
                if next != kind { break }
                index += nextLength
            }
            return index - start
        }
        // A lone space followed by whitespace (or at the end) falls through to the runs below.

        // 5–6. Whitespace: the whole run if it reaches the end or precedes nothing else;
        // otherwise leave its last scalar to start the next piece (\s+(?!\S)), unless the run
        // is that one scalar (\s+).
        index = start
        var lastStart = start
        while index < end {
            let (next, nextLength) = classAt(text, index)
            if next != .whitespace { break }
            lastStart = index
            index += nextLength
        }
        if index == end || lastStart == start { return index - start }
        return lastStart - start
    }
}
