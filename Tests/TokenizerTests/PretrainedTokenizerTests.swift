import Foundation
import Kernels
import TensorIO
import TestSupport
@testable import Tokenizer
import XCTest

/// The tokenizers of real models: SmolLM2's GGUF vocabulary against llama.cpp's ids
/// (`../shared/data/smollm2/tokens.json`), the same vocabulary from Hugging Face's
/// `tokenizer.json`, and every ``PreTokenization`` rule against its patterns run by `Regex`.
final class PretrainedTokenizerTests: XCTestCase {
    struct Case: Decodable { let text: String, ids: [Int32] }

    static func fixtureCases() throws -> [Case] {
        let path = try Fixtures.requireSharedData("smollm2/tokens.json")
        return try JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func testSmolLM2GGUFVocabularyGivesLlamaCppIds() throws {
        let cases = try Self.fixtureCases()
        let file = try GGUFFile(path: try Fixtures.requireSmolLM2())
        let tokenizer = try GGUFTokenizer.bytePairs(file)
        XCTAssertEqual(tokenizer.rules.preTokenization, .digitsThenGPT2)
        XCTAssertEqual(tokenizer.rules.promptPrefix, [])
        XCTAssertEqual(tokenizer.stopTokens, [2, 0])
        XCTAssertEqual(tokenizer.specialTokens.count, 17)
        for (index, item) in cases.enumerated() {
            XCTAssertEqual(tokenizer.encode(item.text), item.ids, "string \(index) \(item.text.debugDescription)")
            XCTAssertEqual(try tokenizer.decode(item.ids), item.text, "decode of string \(index)")
        }
        // Written-out special tokens are those tokens, or their characters when asked.
        XCTAssertEqual(tokenizer.encode("<|im_start|>"), [1])
        XCTAssertEqual(try tokenizer.decode(tokenizer.encode("<|im_start|>", parsingSpecialTokens: false)), "<|im_start|>")
        XCTAssertGreaterThan(tokenizer.encode("<|im_start|>", parsingSpecialTokens: false).count, 1)
    }

    func testSmolLM2TokenizerJSONGivesTheSameIds() throws {
        let cases = try Self.fixtureCases()
        let tokenizer = try HuggingFaceFile.load(path: try Fixtures.requireSharedData("hf-llama-tiny/tokenizer.json"))
        XCTAssertEqual(tokenizer.rules.preTokenization, .digitsThenGPT2)
        XCTAssertFalse(tokenizer.rules.ignoresMerges)
        for (index, item) in cases.enumerated() {
            XCTAssertEqual(tokenizer.encode(item.text), item.ids, "string \(index) \(item.text.debugDescription)")
        }
        let ids = try NPYFile(path: try Fixtures.requireSharedData("hf-llama-tiny/expected_ids.npy")).integers().map { Int32($0) }
        XCTAssertEqual(tokenizer.encode(try tokenizer.decode(ids)), ids)
    }

    /// SmolLM2's whole encoding against a plain pipeline built here: special tokens split out
    /// by search, pieces from the patterns run by `Regex`, merges applied by a naive loop (the
    /// lowest-ranked adjacent pair, leftmost first, until none is left), bytes without a token
    /// dropped; on random text of hard cases with SmolLM2's control tokens mixed in.
    func testSmolLM2EncodingEqualsAPlainPipelineOnRandomText() throws {
        let tokenizer = try GGUFTokenizer.bytePairs(try GGUFFile(path: try Fixtures.requireSmolLM2()))
        let patterns = try [#"\p{N}"#, #"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#]
            .map { try Regex($0).matchingSemantics(.unicodeScalar) }
        var ranks: [[Int32]: Int] = [:]
        for (rank, merge) in tokenizer.merges.enumerated() where ranks[[merge.left, merge.right]] == nil { ranks[[merge.left, merge.right]] = rank }
        var byteID = [Int32?](repeating: nil, count: 256)
        for (id, bytes) in tokenizer.vocabulary.enumerated() where bytes.count == 1 && byteID[Int(bytes[0])] == nil { byteID[Int(bytes[0])] = Int32(id) }
        let specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
        // Searched in bytes: a special token followed by a combining mark is still that token.
        let specialBytes = specials.map { Array($0.utf8) }
        func plain(_ text: String) -> [Int32] {
            let bytes = Array(text.utf8)
            var ids: [Int32] = []
            var start = 0
            func encodeOrdinary(_ range: Range<Int>) {
                for piece in Self.split(String(decoding: bytes[range], as: UTF8.self), patterns) {
                    var symbols: [Int32?] = piece.utf8.map { byteID[Int($0)] }
                    while true {
                        var best: (rank: Int, index: Int)?
                        for i in 0..<max(symbols.count - 1, 0) {
                            guard let a = symbols[i], let b = symbols[i + 1], let rank = ranks[[a, b]] else { continue }
                            if best == nil || rank < best!.rank { best = (rank, i) }
                        }
                        guard let best else { break }
                        symbols[best.index] = tokenizer.merges[best.rank].result
                        symbols.remove(at: best.index + 1)
                    }
                    ids += symbols.compactMap { $0 }
                }
            }
            var index = 0
            while index < bytes.count {
                if let special = specialBytes.firstIndex(where: { bytes[index...].starts(with: $0) }) {
                    encodeOrdinary(start..<index)
                    ids.append(tokenizer.specialTokenID(specials[special])!)
                    index += specialBytes[special].count
                    start = index
                } else {
                    index += 1
                }
            }
            encodeOrdinary(start..<bytes.count)
            return ids
        }
        var generator = SeededGenerator(seed: 2024)
        for index in 0..<1_500 {
            var text = ""
            for _ in 0..<Int(generator.next() % 4) {
                text += HardCaseText.random(&generator, maximumUnits: 8) + specials[Int(generator.next() % 3)]
            }
            text += HardCaseText.random(&generator, maximumUnits: 8) + ["2024", " 1,000,000", "\u{1}\u{4}x", "\t\t42"][index % 4]
            let expected = plain(text), actual = tokenizer.encode(text)
            if actual != expected {
                XCTFail("string \(index) \(text.debugDescription): \(actual) but the plain pipeline gives \(expected)")
                break
            }
        }
    }

    /// Each rule against llama.cpp's patterns run in turn by Swift's `Regex` (an independent
    /// implementation), on random text built from hard cases.
    func testEveryRuleEqualsItsPatterns() throws {
        let gpt2 = #"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        let patterns: [(PreTokenization, [String])] = [
            (.gpt2, [gpt2]),
            (.digitsThenGPT2, [#"\p{N}"#, gpt2]),
            (.llama3, [#"'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#]),
            (.qwen2, [#"'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#]),
            (.llamaCppDefault, [#"[\p{P}\$\+<=>\^~\|]+"#, gpt2, #"\p{N}+"#, "[0-9][0-9][0-9]"]),
        ]
        let extra = ["1234567", "(word", "\tword", "'S", "'LL", "$5", "a+b", "^~|", "`", "\r\n\r\n", "  \n ", "x\n\n  y"]
        for (rule, sources) in patterns {
            let regexes = try sources.map { try Regex($0).matchingSemantics(.unicodeScalar) }
            var generator = SeededGenerator(seed: 77)
            for index in 0..<20_000 {
                var text = HardCaseText.random(&generator, maximumUnits: 12)
                if index % 3 == 0 { text += extra[index / 3 % extra.count] + HardCaseText.random(&generator, maximumUnits: 4) }
                let expected = Self.split(text, regexes)
                let actual = rule.pieces(text)
                if actual != expected {
                    XCTFail("\(rule) string \(index) \(text.debugDescription): \(actual) but the patterns give \(expected)")
                    break
                }
            }
        }
    }

    /// llama.cpp's splitting: each pattern re-splits every piece, keeping the text between matches.
    static func split(_ text: String, _ regexes: [Regex<AnyRegexOutput>]) -> [String] {
        var pieces = text.isEmpty ? [] : [text]
        for regex in regexes {
            pieces = pieces.flatMap { piece -> [String] in
                var parts: [String] = []
                var cursor = piece.unicodeScalars.startIndex
                for match in piece.matches(of: regex) where !match.range.isEmpty {
                    if cursor < match.range.lowerBound { parts.append(String(piece.unicodeScalars[cursor..<match.range.lowerBound])) }
                    parts.append(String(piece.unicodeScalars[match.range]))
                    cursor = match.range.upperBound
                }
                if cursor < piece.unicodeScalars.endIndex { parts.append(String(piece.unicodeScalars[cursor...])) }
                return parts
            }
        }
        return pieces
    }

    /// Encoding in parallel chunks and in streamed blocks cuts only where each rule allows.
    func testCutsAreExactUnderEveryRule() throws {
        let base = PreTokenizerDifferentialTests.tokenizer
        for rule in PreTokenization.allCases {
            let tokenizer = try Tokenizer(vocabulary: base.vocabulary, merges: base.merges.map { ($0.left, $0.right) },
                                          specialTokens: [HardCaseText.special], rules: TokenizerRules(preTokenization: rule))
            var generator = SeededGenerator(seed: 3)
            var text = ""
            for _ in 0..<3_000 { text += HardCaseText.random(&generator) + "2024 (x) 1,000\n" }
            XCTAssertEqual(tokenizer.encode(text, threads: 4), tokenizer.encode(text), "\(rule): parallel chunks")
        }
    }
}

/// A GGUF file with a SentencePiece vocabulary (`tokenizer.ggml.model = llama`, as TinyLlama's)
/// gives the run.c-exact tokenizer: built here from llama2.c's `tokenizer.bin`.
final class GGUFSentencePieceTests: TemporaryDirectoryTestCase {
    func testLlamaVocabularyEncodesAsTheTokenizerBin() throws {
        let reference = try SentencePieceTokenizer(path: try Fixtures.requireSharedData("llama2c/tokenizer.bin"))
        var builder = GGUFBuilder()
        builder.key("tokenizer.ggml.model", string: "llama")
        builder.key("tokenizer.ggml.tokens", strings: reference.pieces.map { String(decoding: $0, as: UTF8.self).replacingOccurrences(of: " ", with: "\u{2581}") })
        builder.key("tokenizer.ggml.scores", floats: reference.scores)
        builder.key("tokenizer.ggml.bos_token_id", u32: 1)
        builder.key("tokenizer.ggml.eos_token_id", u32: 2)
        let path = directory + "/spm.gguf"
        try Data(builder.bytes).write(to: URL(fileURLWithPath: path))
        let tokenizer = try XCTUnwrap(try GGUFTokenizer.load(try GGUFFile(path: path)) as? SentencePieceTokenizer)
        for text in ["Once upon a time, there was a little girl named Lily.", "  two  spaces\nand a newline", "日本語 ünïcödé 🙃", ""] {
            XCTAssertEqual(tokenizer.encode(text), reference.encode(text), text)
        }
        // A file whose BOS is elsewhere is not llama2.c's layout: llama.cpp's algorithm reads it,
        // BOS where the file says.
        builder.key("tokenizer.ggml.bos_token_id", u32: 5)
        builder.keys.removeAll { $0.name == "tokenizer.ggml.bos_token_id" && $0.payload == GGUFBuilder.le(UInt32(1)) }
        try Data(builder.bytes).write(to: URL(fileURLWithPath: path))
        let other = try XCTUnwrap(try GGUFTokenizer.load(try GGUFFile(path: path)) as? ScoredPieceTokenizer)
        XCTAssertEqual(other.promptPrefix, [5])
        XCTAssertTrue(other.addsSpacePrefix, "the dummy space is on unless the file turns it off")
        XCTAssertEqual(other.encode("Once upon a time"), Array(reference.encode("Once upon a time").dropFirst()), "the same merges as run.c here")
    }

    func testUnknownPreTokenizerIsNamed() throws {
        var builder = GGUFBuilder()
        builder.key("tokenizer.ggml.model", string: "gpt2")
        builder.key("tokenizer.ggml.tokens", strings: (0..<256).map { ByteLevel.encode([UInt8($0)]) })
        builder.key("tokenizer.ggml.merges", strings: [])
        builder.key("tokenizer.ggml.pre", string: "tekken")
        let path = directory + "/bpe.gguf"
        try Data(builder.bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try GGUFTokenizer.load(try GGUFFile(path: path))) { XCTAssertTrue("\($0)".contains("'tekken'"), "\($0)") }
    }

    /// A GGUF vocabulary of each tokenizer model lacking what its encoder needs is refused
    /// naming the file and what is missing: llama2.c's layout with a byte piece gone, a scored
    /// vocabulary of 300 pieces without bytes or an unknown piece, a gpt2 token written twice.
    func testVocabulariesWithoutWhatTheirEncoderNeedsAreRefused() throws {
        let bytes = (0..<256).map { String(format: "<0x%02X>", $0) }
        func load(model: String, tokens: [String], scores: Bool = true, bos: UInt32? = nil) throws -> any TextTokenizer {
            var builder = GGUFBuilder()
            builder.key("tokenizer.ggml.model", string: model)
            builder.key("tokenizer.ggml.tokens", strings: tokens)
            if scores { builder.key("tokenizer.ggml.scores", floats: tokens.map { _ in 0 }) }
            if let bos { builder.key("tokenizer.ggml.bos_token_id", u32: bos) }
            if model == "gpt2" { builder.key("tokenizer.ggml.merges", strings: []) }
            let path = directory + "/\(model).gguf"
            try Data(builder.bytes).write(to: URL(fileURLWithPath: path))
            return try GGUFTokenizer.load(try GGUFFile(path: path))
        }
        var llama2c = ["<unk>", "<s>", "</s>"] + bytes + ["\u{2581}", "a"]
        XCTAssertNoThrow(try load(model: "llama", tokens: llama2c, bos: 1))
        llama2c[3 + 0x20] = "b"
        XCTAssertThrowsError(try load(model: "llama", tokens: llama2c, bos: 1)) {
            XCTAssertTrue("\($0)".contains("llama.gguf") && "\($0)".contains("byte pieces are missing for byte 0x20"), "\($0)")
        }
        XCTAssertThrowsError(try load(model: "llama", tokens: ["<s>"] + (1..<300).map { "x\($0)" }, bos: 0)) {
            XCTAssertTrue("\($0)".contains("no piece for bytes 0x00") && "\($0)".contains("no unknown piece"), "\($0)")
        }
        let byteLevel = (0..<256).map { ByteLevel.encode([UInt8($0)]) }
        XCTAssertNoThrow(try load(model: "gpt2", tokens: byteLevel + ["ab"], scores: false))
        XCTAssertThrowsError(try load(model: "gpt2", tokens: byteLevel + ["ab", "ab"], scores: false)) {
            XCTAssertTrue("\($0)".contains("gpt2.gguf") && "\($0)".contains("'ab' is given to ids 256 and 257"), "\($0)")
        }
    }
}
