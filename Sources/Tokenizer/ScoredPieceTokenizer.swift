import Foundation

/// A SentencePiece vocabulary of scored pieces encoded exactly as llama.cpp's `llm_tokenizer_spm`
/// encodes it: the tokenizer of GGUF files with `tokenizer.ggml.model = llama` whose layout is not
/// llama2.c's (Gemma 3: 262,144 pieces, BOS 2, EOS 1, byte pieces from id 238, no dummy space).
///
/// Encoding, as llama.cpp does it:
/// 1. Control, user-defined and unknown pieces written in the text are cut out first
///    (``SpecialTokenPartition``; user-defined ones such as Gemma's runs of spaces and newlines
///    even when special tokens are not parsed).
/// 2. Each stretch of text left gets a space in front when ``addsSpacePrefix`` and it starts the
///    text or follows a cut-out token; spaces become `▁` (U+2581).
/// 3. Its UTF-8 characters are the first symbols; the adjacent pair whose joined text is the
///    piece with the highest score merges, the leftmost on a tie, until no pair is a piece.
/// 4. Each symbol is its piece, or the byte pieces `<0xXX>` of its bytes when it is none.
///
/// The tables are immutable and shared; encoding state (a cache of words already seen, scratch
/// space) lives in a ``ScoredPieceEncoder``, one per thread, lent from a pool by ``encode(_:parsingSpecialTokens:)``.
public final class ScoredPieceTokenizer: Sendable {
    /// llama.cpp's token types (`tokenizer.ggml.token_type`).
    public enum PieceKind: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// Each piece as the file writes it (spaces as `▁` in normal pieces).
    public let pieces: [String]
    public let scores: [Float]
    public let kinds: [PieceKind]
    /// Whether a space goes before the text and after every cut-out token
    /// (`tokenizer.ggml.add_space_prefix`; true for Llama 2, false for Gemma).
    public let addsSpacePrefix: Bool
    /// Ids put before every prompt (BOS when `tokenizer.ggml.add_bos_token` says so).
    public let promptPrefix: [Int32]
    /// Ids that end a generated text: EOS, end of turn.
    public let stopTokens: Set<Int32>
    /// BOS, when the vocabulary names one (the dummy space after it is not printed).
    public let bosID: Int32?

    /// A piece's text (as the file writes it) → id, for every piece.
    let idForText: ByteStringMap<Int32>
    /// Byte → the id standing for it when a symbol is no piece: `<0xXX>`, else the byte as a
    /// piece, else the unknown piece (a vocabulary with none of these for some byte is refused).
    let byteIDs: [Int32]
    let specials: SpecialTokenPartition
    /// Pieces with `▁` after their first byte (Gemma 3 has one, `>▁</`): where they occur in
    /// text, a merge can cross the start of a word, so the text is not cut into words there.
    /// Nil when there are too many to check (the text is then merged without cuts).
    let piecesAcrossWords: [[UInt8]]?
    /// What each id prints.
    private let printed: [[UInt8]]
    private let encoderPool = EncoderPool<ScoredPieceEncoder>()

    /// The text of `▁`, the escaped space.
    static let escapedSpace: [UInt8] = [0xE2, 0x96, 0x81]

    /// Builds the tables; errors name the piece. Refused, naming what is missing: a piece written
    /// twice (which id a text maps to would be arbitrary), and a byte with nothing to stand for
    /// it (no `<0xXX>`, no piece of the byte itself, no unknown piece: it would vanish from the
    /// text). `unknownID` stands for bytes with no piece.
    public init(pieces: [String], scores: [Float], kinds: [PieceKind], addsSpacePrefix: Bool, promptPrefix: [Int32],
                stopTokens: [Int32], bosID: Int32?, unknownID: Int32?) throws {
        guard pieces.count == scores.count, pieces.count == kinds.count else {
            throw TokenizerError(
                "\(pieces.count) pieces, \(scores.count) scores and \(kinds.count) token types; they must be as many")
        }
        guard pieces.count < Int(Int32.max) else {
            throw TokenizerError("\(pieces.count) pieces; ids must fit in 32 bits")
        }
        let named = promptPrefix + stopTokens + [bosID, unknownID].compactMap { $0 }
        for id in named where !pieces.indices.contains(Int(id)) {
            throw TokenizerError(
                "token id \(id) (BOS, EOS, unknown or a stop token) is outside the vocabulary of \(pieces.count)")
        }
        if let index = scores.firstIndex(where: { !$0.isFinite }) {
            throw TokenizerError("the score of piece \(index) is \(scores[index])")
        }
        self.pieces = pieces
        self.scores = scores
        self.kinds = kinds
        self.addsSpacePrefix = addsSpacePrefix
        self.promptPrefix = promptPrefix
        self.stopTokens = Set(stopTokens)
        self.bosID = bosID

        var idForText = ByteStringMap<Int32>(capacity: pieces.count)
        var specialTexts: [(bytes: [UInt8], id: Int32, needsSpecialParsing: Bool)] = []
        var across: [[UInt8]] = []
        var printed: [[UInt8]] = []
        printed.reserveCapacity(pieces.count)
        var pieceForByte = [Int32](repeating: -1, count: 256)
        try VocabularyChecks.requireDistinct(pieces.map { Array($0.utf8) })
        for (id, piece) in pieces.enumerated() {
            let bytes = Array(piece.utf8)
            bytes.withUnsafeBufferPointer { idForText.set(Int32(id), for: $0) }
            let kind = kinds[id]
            switch kind {
            case .control, .unknown, .userDefined:
                specialTexts.append((bytes, Int32(id), kind != .userDefined))
                printed.append(bytes)
            case .byte:
                let value = SentencePieceTokenizer.byteValue(of: bytes)
                if let value, pieceForByte[Int(value)] < 0 { pieceForByte[Int(value)] = Int32(id) }
                printed.append(value.map { [$0] } ?? bytes)
            case .unused:
                printed.append([])
            case .normal:
                printed.append(Self.unescapingSpaces(bytes))
            }
            if bytes.count > Self.escapedSpace.count,
               bytes.indices.dropFirst().contains(where: { bytes[$0...].starts(with: Self.escapedSpace) }) {
                across.append(bytes)
            }
        }
        // llama.cpp's byte_to_token: `<0xXX>` in upper case, else the byte as a piece of its own.
        var byteIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            let name = Array(VocabularyChecks.bytePiece(byte).utf8)
            byteIDs[byte] = name.withUnsafeBufferPointer { idForText.value(for: $0) }
                ?? [UInt8(byte)].withUnsafeBufferPointer { idForText.value(for: $0) } ?? pieceForByte[byte]
            if byteIDs[byte] < 0, let unknownID { byteIDs[byte] = unknownID }
        }
        let missing = byteIDs.indices.filter { byteIDs[$0] < 0 }
        if !missing.isEmpty {
            throw TokenizerError("no piece for \(VocabularyChecks.describe(bytes: missing)) and no unknown piece: SentencePiece's byte "
                                 + "fallback needs \(VocabularyChecks.bytePiece(missing[0])) (or the byte as a piece) for every byte of text no piece covers")
        }
        self.idForText = idForText
        self.byteIDs = byteIDs
        self.printed = printed
        specials = SpecialTokenPartition(specialTexts)
        piecesAcrossWords = across.count <= 64 ? across : nil
    }

    public var vocabularySize: Int { pieces.count }

    /// `bytes` with every `▁` turned back into a space. In bytes, not `Character`s: `▁` followed
    /// by a combining mark is one `Character`, which `String.replacingOccurrences` would not match.
    static func unescapingSpaces(_ bytes: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if index + 2 < bytes.count, bytes[index] == 0xE2, bytes[index + 1] == 0x96, bytes[index + 2] == 0x81 {
                result.append(UInt8(ascii: " "))
                index += 3
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return result
    }

    /// The id of a piece by its text as the file writes it (`<start_of_turn>`, `▁the`).
    public func id(of piece: String) -> Int32? {
        Array(piece.utf8).withUnsafeBufferPointer { idForText.value(for: $0) }
    }

    /// A fresh encoder with its own cache, for one thread.
    public func makeEncoder() -> ScoredPieceEncoder { ScoredPieceEncoder(tokenizer: self) }

    /// The ids of `text` (no BOS): control and unknown pieces written in it are those pieces
    /// unless `parsingSpecialTokens` is false; user-defined pieces always are (as in llama.cpp).
    public func encode(_ text: String, parsingSpecialTokens: Bool = true) -> [Int32] {
        var ids: [Int32] = []
        var copy = text
        copy.withUTF8 { bytes in
            encoderPool.withEncoder(make: makeEncoder) {
                $0.encode(bytes, into: &ids, parsingSpecialTokens: parsingSpecialTokens)
            }
        }
        return ids
    }

    /// The bytes `id` prints: a normal piece with `▁` as spaces, a byte piece as its byte, a
    /// control, unknown or user-defined piece as its text, an unused piece as nothing. With
    /// ``addsSpacePrefix``, the dummy space of the first piece (after nothing or BOS) is dropped.
    public func pieceBytes(_ id: Int32, after previous: Int32?) throws -> [UInt8] {
        guard id >= 0 && Int(id) < pieces.count else {
            throw TokenizerError("token id \(id) is outside the vocabulary (0..<\(pieces.count))")
        }
        let bytes = printed[Int(id)]
        let startsText = previous == nil || previous == bosID
        if addsSpacePrefix, startsText, kinds[Int(id)] == .normal, bytes.first == UInt8(ascii: " ") {
            return Array(bytes.dropFirst())
        }
        return bytes
    }

    /// The text of `ids`, each printed as ``pieceBytes(_:after:)`` prints it; byte sequences that
    /// are not valid UTF-8 become U+FFFD. Throws naming the first id outside the vocabulary.
    public func decode<ID: BinaryInteger>(_ ids: some Sequence<ID>) throws -> String {
        var bytes: [UInt8] = [], previous: Int32?
        for (index, raw) in ids.enumerated() {
            guard let id = Int32(exactly: raw), id >= 0, Int(id) < pieces.count else {
                throw TokenizerError("id \(raw) at index \(index) is outside the vocabulary (0..<\(pieces.count))")
            }
            bytes += try pieceBytes(id, after: previous)
            previous = id
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension ScoredPieceTokenizer: TextTokenizer {
    public func encodePrompt(_ text: String) -> [Int32] { promptPrefix + encode(text) }

    /// The rendered template writes the BOS it wants as text (`<bos>`), a control piece that is
    /// cut out like any other; nothing is added.
    public func encodeChat(_ text: String, bos: String, eos: String) -> [Int32] { encode(text) }
}
