/// What generation needs from a tokenizer, whichever kind a model directory holds: the
/// byte-level BPE ``Tokenizer`` (GPT-2 files, `tokenizer.json`, GGUF `gpt2`), llama2.c's
/// ``SentencePieceTokenizer`` (`tokenizer.bin`, GGUF `llama` in llama2.c's layout) or llama.cpp's
/// SentencePiece encoding, ``ScoredPieceTokenizer`` (GGUF `llama` otherwise: Gemma 3).
public protocol TextTokenizer: Sendable {
    var vocabularySize: Int { get }
    /// The ids of a prompt as the model saw text in training (llama2.c: BOS and the dummy space first).
    func encodePrompt(_ text: String) -> [Int32]
    /// Ids that end a generated text.
    var stopTokens: Set<Int32> { get }
    /// The bytes `id` prints when it follows `previous` (nil at the start).
    func pieceBytes(_ id: Int32, after previous: Int32?) throws -> [UInt8]
    /// The ids of a rendered chat template: special tokens written in it are those tokens and
    /// nothing is added in front (the template writes the BOS it wants, as `bos`).
    func encodeChat(_ text: String, bos: String, eos: String) -> [Int32]
}

extension Tokenizer: TextTokenizer {
    public func encodePrompt(_ text: String) -> [Int32] { rules.promptPrefix + encode(text) }

    public var stopTokens: Set<Int32> {
        if let stops = rules.stopTokens { return Set(stops) }
        return specialTokenID("<|endoftext|>").map { [$0] } ?? []
    }

    public func pieceBytes(_ id: Int32, after previous: Int32?) throws -> [UInt8] { try decodeBytes([id]) }

    public func encodeChat(_ text: String, bos: String, eos: String) -> [Int32] { encode(text) }
}

extension SentencePieceTokenizer: TextTokenizer {
    public func encodePrompt(_ text: String) -> [Int32] { encode(text, bos: true) }

    /// `run.c` stops at BOS (the start of another story); EOS ends one too.
    public var stopTokens: Set<Int32> { [Self.bosID, Self.eosID] }

    /// The BOS and EOS texts become those ids; each stretch of text between them is encoded
    /// with the dummy space in front, as llama.cpp does after a special token.
    public func encodeChat(_ text: String, bos: String, eos: String) -> [Int32] {
        var ids: [Int32] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            let marks = [(bos, Self.bosID), (eos, Self.eosID)].filter { !$0.0.isEmpty }
                .compactMap { mark in rest.range(of: mark.0).map { ($0, mark.1) } }
            guard let (range, id) = marks.min(by: { $0.0.lowerBound < $1.0.lowerBound }) else {
                ids += encode(String(rest), bos: false)
                break
            }
            if range.lowerBound > rest.startIndex { ids += encode(String(rest[..<range.lowerBound]), bos: false) }
            ids.append(id)
            rest = rest[range.upperBound...]
        }
        return ids
    }
}
