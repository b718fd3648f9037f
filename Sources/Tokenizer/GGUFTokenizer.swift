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
/// - `tokenizer.ggml.model = llama`: SentencePiece pieces with scores, as TinyLlama's and Llama
///   2's files hold them: the run.c-exact ``SentencePieceTokenizer`` (ids 0–2 `<unk>`, `<s>`,
///   `</s>`, byte pieces from 3).
public enum GGUFTokenizer {
    /// llama.cpp's token types (`tokenizer.ggml.token_type`).
    enum TokenType: Int {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// Texts llama.cpp treats as ending a generation when the vocabulary has them.
    static let endOfGenerationTexts = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
                                       "<EOT>", "<|end_of_text|>", "<end_of_utterance>"]

    /// The file's tokenizer; errors name the key.
    public static func load(_ file: GGUFFile) throws -> any TextTokenizer {
        let model = try string(file, "tokenizer.ggml.model")
        switch model {
        case "gpt2": return try bytePairs(file)
        case "llama": return try sentencePiece(file)
        default:
            throw TokenizerError("\(file.path): metadata key 'tokenizer.ggml.model' is '\(model)'; this engine reads 'gpt2' (byte-level BPE) and 'llama' (SentencePiece)")
        }
    }

    /// The byte-level BPE vocabulary of a `gpt2` file.
    public static func bytePairs(_ file: GGUFFile) throws -> Tokenizer {
        let tokens = try strings(file, "tokenizer.ggml.tokens")
        let types = try tokenTypes(file, count: tokens.count)
        let isSpecial = types.map { $0 == TokenType.control.rawValue || $0 == TokenType.userDefined.rawValue }
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

    /// The SentencePiece vocabulary of a `llama` file, in llama2.c's layout.
    static func sentencePiece(_ file: GGUFFile) throws -> SentencePieceTokenizer {
        let tokens = try strings(file, "tokenizer.ggml.tokens")
        guard let scoreValues = file.metadata["tokenizer.ggml.scores"]?.array else {
            throw TokenizerError("\(file.path): metadata key 'tokenizer.ggml.scores' is missing (a SentencePiece vocabulary needs scores)")
        }
        let scores = try scoreValues.enumerated().map { index, value in
            guard let score = value.double else { throw TokenizerError("\(file.path): tokenizer.ggml.scores[\(index)] is not a number") }
            return Float(score)
        }
        guard scores.count == tokens.count else {
            throw TokenizerError("\(file.path): \(tokens.count) tokens but \(scores.count) scores")
        }
        for (key, expected) in [("tokenizer.ggml.bos_token_id", SentencePieceTokenizer.bosID), ("tokenizer.ggml.eos_token_id", SentencePieceTokenizer.eosID)] {
            if let id = try tokenID(file, key, count: tokens.count), id != expected {
                throw TokenizerError("\(file.path): \(key) is \(id); the SentencePiece tokenizer here has \(expected) there (llama2.c's layout)")
            }
        }
        if try flag(file, "tokenizer.ggml.add_space_prefix") == false {
            throw TokenizerError("\(file.path): tokenizer.ggml.add_space_prefix is false; the SentencePiece tokenizer here always adds the dummy space")
        }
        // SentencePiece writes a space as U+2581; llama2.c's files (and our tokenizer) hold spaces.
        let pieces = tokens.map { Array($0.replacingOccurrences(of: "\u{2581}", with: " ").utf8) }
        do {
            let tokenizer = try SentencePieceTokenizer(pieces: pieces, scores: scores)
            for byte in [0, 0x0A, 0xFF] where tokens[SentencePieceTokenizer.byteOffset + byte] != String(format: "<0x%02X>", byte) {
                throw TokenizerError("id \(SentencePieceTokenizer.byteOffset + byte) is '\(tokens[SentencePieceTokenizer.byteOffset + byte])', not the byte piece llama2.c's layout puts there")
            }
            return tokenizer
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
            return [Int](repeating: TokenType.normal.rawValue, count: count)
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
