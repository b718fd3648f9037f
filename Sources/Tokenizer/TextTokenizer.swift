/// What generation needs from a tokenizer, whichever kind a model directory holds: the
/// byte-level BPE ``Tokenizer`` (GPT-2 files, `tokenizer.json`) or llama2.c's
/// ``SentencePieceTokenizer`` (`tokenizer.bin`).
public protocol TextTokenizer: Sendable {
    var vocabularySize: Int { get }
    /// The ids of a prompt as the model saw text in training (llama2.c: BOS and the dummy space first).
    func encodePrompt(_ text: String) -> [Int32]
    /// Ids that end a generated text.
    var stopTokens: Set<Int32> { get }
    /// The bytes `id` prints when it follows `previous` (nil at the start).
    func pieceBytes(_ id: Int32, after previous: Int32?) throws -> [UInt8]
}

extension Tokenizer: TextTokenizer {
    public func encodePrompt(_ text: String) -> [Int32] { rules.promptPrefix + encode(text) }

    public var stopTokens: Set<Int32> {
        if let stops = rules.stopTokens { return Set(stops) }
        return specialTokenID("<|endoftext|>").map { [$0] } ?? []
    }

    public func pieceBytes(_ id: Int32, after previous: Int32?) throws -> [UInt8] { try decodeBytes([id]) }
}

extension SentencePieceTokenizer: TextTokenizer {
    public func encodePrompt(_ text: String) -> [Int32] { encode(text, bos: true) }

    /// `run.c` stops at BOS (the start of another story); EOS ends one too.
    public var stopTokens: Set<Int32> { [Self.bosID, Self.eosID] }
}
