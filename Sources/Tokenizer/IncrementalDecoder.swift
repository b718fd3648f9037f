/// Turns a stream of ids into text as they arrive, never emitting half a character: bytes of a
/// UTF-8 sequence split across tokens are held until the sequence is complete.
public struct IncrementalDecoder {
    public let tokenizer: Tokenizer
    private var held: [UInt8] = []

    public init(tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    /// The text completed by `id` (possibly empty). Invalid sequences become U+FFFD.
    public mutating func append(_ id: Int32) throws -> String {
        held += try tokenizer.decodeBytes([id])
        let incomplete = held.withUnsafeBufferPointer { UTF8Validation.incompleteSuffixLength($0) }
        let ready = held.count - incomplete
        guard ready > 0 else { return "" }
        let text = String(decoding: held[0..<ready], as: UTF8.self)
        held.removeFirst(ready)
        return text
    }

    /// Whatever is still held, with U+FFFD for an unfinished sequence.
    public mutating func finish() -> String {
        defer { held.removeAll() }
        return String(decoding: held, as: UTF8.self)
    }
}
