import Foundation
import TensorIO

/// The tokenizer a GGUF file carries in its `tokenizer.ggml.*` metadata, read as llama.cpp
/// reads it.
///
/// - `tokenizer.ggml.model = gpt2`: a byte-level BPE ``Tokenizer`` from `tokens` (byte-level
///   text; control and user-defined tokens literal), `merges` (`"left right"`) and `token_type`;
///   the pre-tokenization chosen by `tokenizer.ggml.pre` (``PreTokenization``); control and
///   user-defined tokens matched whole in text; BOS before a prompt when `add_bos_token` says
///   so (Llama 3's rules default to yes); generation stops at EOS, EOT, EOM and the end-of-turn
///   tokens llama.cpp recognises by their text.
/// - `tokenizer.ggml.model = llama`: SentencePiece pieces with scores. In llama2.c's layout (BOS
///   1, EOS 2, byte pieces `<0x00>`… at ids 3…258, the dummy space not turned off: TinyLlama's
///   and Llama 2's files), the run.c-exact ``SentencePieceTokenizer``; in any other (Gemma 3:
///   BOS 2, EOS 1, bytes from 238, `add_space_prefix = false`), llama.cpp's own algorithm,
///   ``ScoredPieceTokenizer``, with BOS before a prompt unless `add_bos_token` is false and
///   generation stopping at EOS, EOT and the end-of-turn pieces (`<end_of_turn>`).
public enum GGUFTokenizer {
    /// Texts llama.cpp treats as ending a generation when the vocabulary has them.
    static let endOfGenerationTexts = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
                                       "<EOT>", "<|end_of_text|>", "<end_of_utterance>"]

    /// The file's tokenizer; errors name the key.
    public static func load(_ file: GGUFFile) throws -> any TextTokenizer {
        let model = try string(file, "tokenizer.ggml.model")
        switch model {
        case "gpt2": return try bytePairs(file)
        case "llama":
            return try hasLlama2cLayout(file) ? try sentencePiece(file) : try scoredPieces(file)
        default:
            throw TokenizerError("\(file.path): metadata key 'tokenizer.ggml.model' is '\(model)'; this engine reads 'gpt2' (byte-level BPE) and 'llama' (SentencePiece)")
        }
    }

    /// The byte-level BPE vocabulary of a `gpt2` file.
    public static func bytePairs(_ file: GGUFFile) throws -> Tokenizer {
        let tokens = try strings(file, "tokenizer.ggml.tokens")
        let types = try tokenTypes(file, count: tokens.count)
        let isSpecial = types.map { $0 == ScoredPieceTokenizer.PieceKind.control.rawValue || $0 == ScoredPieceTokenizer.PieceKind.userDefined.rawValue }
        let table = try VocabularyTable(entries: tokens.enumerated().map { (Array($1.utf8), $0) }, file: file.path,
                                        section: "tokenizer.ggml.tokens ", literal: { id, _ in isSpecial[id] }, literalWhenNotByteLevel: true)
        let mergeTexts = try strings(file, "tokenizer.ggml.merges")
        var merges: [(left: Int32, right: Int32)] = []
        merges.reserveCapacity(mergeTexts.count)
        for (index, text) in mergeTexts.enumerated() {
            let utf8 = Array(text.utf8)
            guard let space = utf8.firstIndex(of: UInt8(ascii: " ")), let left = table.id(utf8[..<space]),
                  let right = table.id(utf8[(space + 1)...]) else {
                throw TokenizerError("\(file.path): tokenizer.ggml.merges[\(index)] '\(text)' is not two vocabulary tokens separated by a space")
            }
            merges.append((left, right))
        }
        let preName = file.metadata["tokenizer.ggml.pre"]?.string ?? "default"
        guard let pre = PreTokenization(llamaCppName: preName) else {
            let known = PreTokenization.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw TokenizerError("\(file.path): metadata key 'tokenizer.ggml.pre' is '\(preName)'; the pre-tokenizers implemented are \(known)")
        }
        let specials = tokens.indices.filter { isSpecial[$0] && !tokens[$0].isEmpty }
        var rules = TokenizerRules(preTokenization: pre, ignoresMerges: pre == .llama3, dropsBytesWithoutToken: true)
        if try flag(file, "tokenizer.ggml.add_bos_token") ?? (pre == .llama3) {
            guard let bos = try tokenID(file, "tokenizer.ggml.bos_token_id", count: tokens.count) else {
                throw TokenizerError("\(file.path): tokenizer.ggml.add_bos_token is true but tokenizer.ggml.bos_token_id is missing")
            }
            rules.promptPrefix = [bos]
        }
        var stops: [Int32] = []
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let id = try tokenID(file, key, count: tokens.count), !stops.contains(id) { stops.append(id) }
        }
        for id in specials where endOfGenerationTexts.contains(tokens[id]) && !stops.contains(Int32(id)) { stops.append(Int32(id)) }
        rules.stopTokens = stops
        do {
            return try Tokenizer(vocabulary: table.bytes, merges: merges, specialTokens: specials.map { tokens[$0] }, rules: rules)
        } catch let error as TokenizerError {
            throw TokenizerError("\(file.path): \(error.message)")
        }
    }

    /// Whether a `llama` file's vocabulary is laid out as llama2.c's (ids 1 and 2 BOS and EOS,
    /// `<0x00>`, `<0x0A>` and `<0xFF>` at 3, 13 and 258, the dummy space not turned off), so
    /// that the run.c-exact tokenizer reads it.
    static func hasLlama2cLayout(_ file: GGUFFile) throws -> Bool {
        let tokens = try strings(file, "tokenizer.ggml.tokens")
        guard tokens.count > SentencePieceTokenizer.byteOffset + 255 else { return false }
        let bos = try tokenID(file, "tokenizer.ggml.bos_token_id", count: tokens.count) ?? SentencePieceTokenizer.bosID
        let eos = try tokenID(file, "tokenizer.ggml.eos_token_id", count: tokens.count) ?? SentencePieceTokenizer.eosID
        let bytesInPlace = [0, 0x0A, 0xFF].allSatisfy { tokens[SentencePieceTokenizer.byteOffset + $0] == String(format: "<0x%02X>", $0) }
        let spacePrefix = try flag(file, "tokenizer.ggml.add_space_prefix")
        return bos == SentencePieceTokenizer.bosID && eos == SentencePieceTokenizer.eosID && bytesInPlace && spacePrefix != false
    }

    /// The SentencePiece vocabulary of a `llama` file read as llama.cpp reads it (any layout).
    public static func scoredPieces(_ file: GGUFFile) throws -> ScoredPieceTokenizer {
        let tokens = try strings(file, "tokenizer.ggml.tokens")
        let scores = try pieceScores(file, count: tokens.count)
        let kinds = try tokenTypes(file, count: tokens.count).enumerated().map { index, type in
            guard let kind = ScoredPieceTokenizer.PieceKind(rawValue: type) else {
                throw TokenizerError("\(file.path): tokenizer.ggml.token_type[\(index)] is \(type), not one of llama.cpp's types 1…6")
            }
            return kind
        }
        let bos = try tokenID(file, "tokenizer.ggml.bos_token_id", count: tokens.count)
        var prefix: [Int32] = []
        // llama.cpp adds BOS to a SentencePiece vocabulary unless the file says not to.
        if try flag(file, "tokenizer.ggml.add_bos_token") ?? true {
            guard let bos else {
                throw TokenizerError("\(file.path): tokenizer.ggml.add_bos_token is true (or absent) but tokenizer.ggml.bos_token_id is missing")
            }
            prefix = [bos]
        }
        var stops: [Int32] = []
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let id = try tokenID(file, key, count: tokens.count), !stops.contains(id) { stops.append(id) }
        }
        for (id, kind) in kinds.enumerated() where (kind == .control || kind == .userDefined) && endOfGenerationTexts.contains(tokens[id]) {
            if !stops.contains(Int32(id)) { stops.append(Int32(id)) }
        }
        do {
            return try ScoredPieceTokenizer(pieces: tokens, scores: scores, kinds: kinds,
                                            addsSpacePrefix: try flag(file, "tokenizer.ggml.add_space_prefix") ?? true, promptPrefix: prefix,
                                            stopTokens: stops, bosID: bos, unknownID: try tokenID(file, "tokenizer.ggml.unknown_token_id", count: tokens.count))
        } catch let error as TokenizerError {
            throw TokenizerError("\(file.path): \(error.message)")
        }
    }

    /// The SentencePiece vocabulary of a `llama` file, in llama2.c's layout.
    static func sentencePiece(_ file: GGUFFile) throws -> SentencePieceTokenizer {
        let tokens = try strings(file, "tokenizer.ggml.tokens")
        let scores = try pieceScores(file, count: tokens.count)
        for (key, expected) in [("tokenizer.ggml.bos_token_id", SentencePieceTokenizer.bosID), ("tokenizer.ggml.eos_token_id", SentencePieceTokenizer.eosID)] {
            if let id = try tokenID(file, key, count: tokens.count), id != expected {
                throw TokenizerError("\(file.path): \(key) is \(id); the SentencePiece tokenizer here has \(expected) there (llama2.c's layout)")
            }
        }
        if try flag(file, "tokenizer.ggml.add_space_prefix") == false {
            throw TokenizerError("\(file.path): tokenizer.ggml.add_space_prefix is false; the SentencePiece tokenizer here always adds the dummy space")
        }
        // SentencePiece writes a space as U+2581; llama2.c's files (and our tokenizer) hold spaces.
        let pieces = tokens.map { ScoredPieceTokenizer.unescapingSpaces(Array($0.utf8)) }
        do {
            // Its init checks the layout whole: BOS, EOS, every byte piece, no piece twice.
            return try SentencePieceTokenizer(pieces: pieces, scores: scores)
        } catch let error as TokenizerError {
            throw TokenizerError("\(file.path): \(error.message)")
        }
    }

    // MARK: - Metadata

    private static func string(_ file: GGUFFile, _ key: String) throws -> String {
        guard let value = file.metadata[key] else { throw TokenizerError("\(file.path): metadata key '\(key)' is missing") }
        guard let text = value.string else { throw TokenizerError("\(file.path): metadata key '\(key)' is not a string") }
        return text
    }

    private static func strings(_ file: GGUFFile, _ key: String) throws -> [String] {
        guard let value = file.metadata[key] else { throw TokenizerError("\(file.path): metadata key '\(key)' is missing") }
        guard let texts = value.strings else { throw TokenizerError("\(file.path): metadata key '\(key)' is not an array of strings") }
        return texts
    }

    private static func pieceScores(_ file: GGUFFile, count: Int) throws -> [Float] {
        guard let values = file.metadata["tokenizer.ggml.scores"]?.array else {
            throw TokenizerError("\(file.path): metadata key 'tokenizer.ggml.scores' is missing (a SentencePiece vocabulary needs scores)")
        }
        guard values.count == count else { throw TokenizerError("\(file.path): \(count) tokens but \(values.count) scores") }
        return try values.enumerated().map { index, value in
            guard let score = value.double, score.isFinite else {
                throw TokenizerError("\(file.path): tokenizer.ggml.scores[\(index)] is not a finite number")
            }
            return Float(score)
        }
    }

    private static func flag(_ file: GGUFFile, _ key: String) throws -> Bool? {
        guard let value = file.metadata[key] else { return nil }
        guard let flag = value.bool else { throw TokenizerError("\(file.path): metadata key '\(key)' is not a bool") }
        return flag
    }

    private static func tokenID(_ file: GGUFFile, _ key: String, count: Int) throws -> Int32? {
        guard let value = file.metadata[key] else { return nil }
        guard let id = value.int, id >= 0, id < count else {
            throw TokenizerError("\(file.path): metadata key '\(key)' is \(value), not a token id in 0..<\(count)")
        }
        return Int32(id)
    }

    private static func tokenTypes(_ file: GGUFFile, count: Int) throws -> [Int] {
        guard let values = file.metadata["tokenizer.ggml.token_type"]?.array else {
            return [Int](repeating: ScoredPieceTokenizer.PieceKind.normal.rawValue, count: count)
        }
        guard values.count == count else {
            throw TokenizerError("\(file.path): tokenizer.ggml.token_type has \(values.count) entries for \(count) tokens")
        }
        return try values.enumerated().map { index, value in
            guard let type = value.int else { throw TokenizerError("\(file.path): tokenizer.ggml.token_type[\(index)] is not an integer") }
            return type
        }
    }
}
