import Foundation
import TestSupport
@testable import Tokenizer
import XCTest

/// Llama 3.2's real `tokenizer.json` (`models/llama3.2-tokenizer/`, fetched by
/// `scripts/fetch-models.sh`): its 257 added tokens have ids 128000–128256, past the 128,000 of
/// the BPE vocabulary. Checked against Hugging Face `tokenizers` on the hard strings of
/// `../shared/data/llama3-tokenizer/tokens.json` and on random hard text
/// (`Fixtures/llama3_2_hard_cases.json`); the reading of added tokens past the vocabulary on a
/// small file built here.
final class Llama3TokenizerTests: TemporaryDirectoryTestCase {
    struct Case: Decodable { let text: String, ids: [Int32] }

    static func llama32() throws -> Tokenizer {
        try HuggingFaceFile.load(path: try Fixtures.requireModelFile("llama3.2-tokenizer/tokenizer.json", for: "the Llama 3.2 tokenizer comparison"))
    }

    func testLlama32TokenizerJSONGivesHuggingFaceIds() throws {
        let tokenizer = try Self.llama32()
        XCTAssertEqual(tokenizer.vocabularySize, 128_257, "128,000 BPE tokens and the added tokens up to <|image|> (128256)")
        XCTAssertEqual(tokenizer.rules.preTokenization, .llama3)
        XCTAssertEqual(tokenizer.rules.promptPrefix, [128_000], "the post-processor puts <|begin_of_text|> first")
        XCTAssertFalse(tokenizer.rules.ignoresMerges, "this file states ignore_merges false")
        XCTAssertEqual(tokenizer.specialTokenID("<|eot_id|>"), 128_009)
        let path = try Fixtures.requireSharedData("llama3-tokenizer/tokens.json")
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertGreaterThan(cases.count, 10)
        for (index, item) in cases.enumerated() {
            XCTAssertEqual(tokenizer.encode(item.text), item.ids, "string \(index) \(item.text.debugDescription)")
            XCTAssertEqual(try tokenizer.decode(item.ids), item.text, "decode of string \(index)")
        }
        XCTAssertEqual(tokenizer.encodePrompt("Hello world"), [128_000, 9906, 1917])
        // 588 tokens cannot be built by the merges. The file says ignore_merges false, so a piece
        // that is such a token is still merged (Hugging Face does the same); llama.cpp and tiktoken
        // take the whole token (100769) instead.
        XCTAssertEqual(tokenizer.encode(" việc"), [3355, 26298, 66])
        // The directory loads the same way.
        let directory = URL(fileURLWithPath: try Fixtures.requireModelFile("llama3.2-tokenizer/tokenizer.json", for: "the Llama 3.2 tokenizer comparison"))
            .deletingLastPathComponent().path
        XCTAssertEqual(try XCTUnwrap(try TokenizerDirectory.loadAny(directory)).vocabularySize, 128_257)
    }

    /// 408 seeded random strings of hard cases with Llama 3's special tokens mixed in, against
    /// Hugging Face `tokenizers` with the same file.
    func testLlama32EqualsHuggingFaceOnRandomHardText() throws {
        let tokenizer = try Self.llama32()
        let cases = try GemmaTokenizerTests.committedCases("llama3_2_hard_cases.json")
        XCTAssertGreaterThan(cases.count, 400)
        var failures = 0
        for (index, item) in cases.enumerated() where tokenizer.encode(item.text) != item.ids {
            failures += 1
            if failures <= 5 { XCTFail("string \(index) \(item.text.debugDescription): \(tokenizer.encode(item.text)) but Hugging Face gives \(item.ids)") }
        }
        XCTAssertEqual(failures, 0, "strings that differ")
    }

    /// A `tokenizer.json` of the 256 bytes whose added tokens come after them.
    func file(addedIDs: [Int]) throws -> String {
        let vocab = Dictionary(uniqueKeysWithValues: (0..<256).map { (ByteLevel.encode([UInt8($0)]), $0) })
        let added = addedIDs.enumerated().map { index, id in
            ["id": id, "content": "<|extra_\(index)|>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false] as [String: Any]
        }
        let object: [String: Any] = [
            "added_tokens": added,
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "vocab": vocab, "merges": [String]()],
        ]
        let path = directory + "/tokenizer-\(addedIDs.map(String.init).joined(separator: "-")).json"
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testAddedTokensPastTheVocabularyExtendIt() throws {
        let tokenizer = try HuggingFaceFile.load(path: try file(addedIDs: [257, 256]))
        XCTAssertEqual(tokenizer.vocabularySize, 258)
        XCTAssertEqual(tokenizer.encode("a<|extra_0|>b<|extra_1|>"), [tokenizer.encode("a")[0], 257, tokenizer.encode("b")[0], 256])
        XCTAssertEqual(try tokenizer.decode([257, 256]), "<|extra_0|><|extra_1|>")
        // A gap in the ids is refused, naming the missing id.
        XCTAssertThrowsError(try HuggingFaceFile.load(path: try file(addedIDs: [256, 258]))) {
            XCTAssertTrue("\($0)".contains("no token has id 257"), "\($0)")
        }
    }
}
