/// What a vocabulary must hold for its encoder to work, checked where it is read: a vocabulary
/// that lacks them would map text to wrong pieces in silence (bytes to whatever sits at their
/// ids, a BOS that is some other piece), so it is refused with what is missing named.
enum VocabularyChecks {
    /// Stops at the first piece written twice, naming both ids: which one an encoder would use
    /// depends on the implementation (run.c's binary search finds either).
    static func requireDistinct(_ pieces: [[UInt8]]) throws {
        var seen = ByteStringMap<Int32>(capacity: pieces.count)
        for (id, piece) in pieces.enumerated() {
            if let first = piece.withUnsafeBufferPointer({ seen.value(for: $0) }) {
                throw TokenizerError("pieces \(first) and \(id) are both '\(String(decoding: piece, as: UTF8.self))'; every piece must be distinct")
            }
            piece.withUnsafeBufferPointer { seen.set(Int32(id), for: $0) }
        }
    }

    /// The text of byte piece `byte` as SentencePiece writes it: `<0x0A>`.
    static func bytePiece(_ byte: Int) -> String {
        let digits = Array("0123456789ABCDEF")
        return "<0x" + String(digits[byte >> 4]) + String(digits[byte & 15]) + ">"
    }

    /// "bytes 0x00, 0x01, 0x02 and 253 more": a list of missing bytes, short enough to read.
    static func describe(bytes: [Int]) -> String {
        let shown = bytes.prefix(3).map { bytePiece($0).dropFirst().dropLast() }.joined(separator: ", ")
        return bytes.count > 3 ? "bytes \(shown) and \(bytes.count - 3) more" : (bytes.count == 1 ? "byte \(shown)" : "bytes \(shown)")
    }
}
