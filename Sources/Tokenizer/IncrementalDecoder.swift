/// Turns a stream of ids into text as they arrive, never emitting half a character: bytes of a
/// UTF-8 sequence split across tokens are held until the sequence is complete.
public struct IncrementalDecoder {
    public let tokenizer: any TextTokenizer
    private var held: [UInt8] = []
    private var previous: Int32?

    public init(tokenizer: any TextTokenizer) { self.tokenizer = tokenizer }

    /// Starts after `id` without printing it (the prompt's last token, so that what follows
    /// decodes as it would after it).
    public mutating func follow(_ id: Int32) { previous = id }

    /// The text completed by `id` (possibly empty). Invalid sequences become U+FFFD.
    public mutating func append(_ id: Int32) throws -> String {
        held += try tokenizer.pieceBytes(id, after: previous)
        previous = id
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
