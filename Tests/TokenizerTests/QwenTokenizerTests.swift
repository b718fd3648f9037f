import Foundation
import TensorIO
import TestSupport
@testable import Tokenizer
import XCTest

/// Qwen's byte-level BPE under its own pre-tokenizer (``PreTokenization/qwen2``: Llama 3's
/// pattern with single digits): the tiny Qwen 3 and Qwen 2 tokenizers in `../shared/data`, from
/// their `tokenizer.json` and Qwen 3's GGUF, against transformers' ids, and against Hugging Face
/// `tokenizers` on random hard text (`Fixtures/qwen3_tiny_hard_cases.json`).
final class QwenTokenizerTests: XCTestCase {
    /// The texts of `<folder>/expected.json` with the ids in `expected_ids_<i>.npy`.
    static func expectedCases(_ folder: String) throws -> [(text: String, ids: [Int32])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.requireSharedData("\(folder)/expected.json")))
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        return try entries.enumerated().map { index, entry in
            let ids = try NPYFile(path: try Fixtures.requireSharedData("\(folder)/expected_ids_\(index).npy")).integers().map { Int32($0) }
            XCTAssertEqual(ids.count, entry["ids"] as? Int, "\(folder) text \(index): the id count expected.json states")
            return (try XCTUnwrap(entry["text"] as? String), ids)
        }
    }

    func testQwenTokenizerJSONsGiveTransformersIds() throws {
        for folder in ["qwen3-tiny", "qwen2-tiny"] {
            let tokenizer = try HuggingFaceFile.load(path: try Fixtures.requireSharedData("\(folder)/tokenizer.json"))
            XCTAssertEqual(tokenizer.rules.preTokenization, .qwen2, folder)
            XCTAssertFalse(tokenizer.rules.ignoresMerges, folder)
            XCTAssertEqual(tokenizer.rules.promptPrefix, [], "\(folder): Qwen puts no BOS first")
            for (index, item) in try Self.expectedCases(folder).enumerated() {
                XCTAssertEqual(tokenizer.encode(item.text), item.ids, "\(folder) text \(index)")
                XCTAssertEqual(try tokenizer.decode(item.ids), item.text, "\(folder) decode of text \(index)")
            }
            // Numbers are single digits, where Llama 3 takes three at a time.
            XCTAssertEqual(PreTokenization.qwen2.pieces("In 2024, x1000"), ["In", " ", "2", "0", "2", "4", ",", " x", "1", "0", "0", "0"])
        }
    }

    /// llama.cpp's reading of the same vocabulary (`tokenizer.ggml.pre = qwen2`) gives the same ids.
    func testQwen3GGUFGivesTheSameIds() throws {
        let file = try GGUFFile(path: try Fixtures.requireSharedData("qwen3-tiny/model-f32.gguf"))
        XCTAssertEqual(file.metadata["tokenizer.ggml.pre"]?.string, "qwen2")
        let tokenizer = try XCTUnwrap(try GGUFTokenizer.load(file) as? Tokenizer)
        XCTAssertEqual(tokenizer.rules.preTokenization, .qwen2)
        for (index, item) in try Self.expectedCases("qwen3-tiny").enumerated() {
            XCTAssertEqual(tokenizer.encodePrompt(item.text), item.ids, "text \(index)")
        }
        XCTAssertTrue(tokenizer.stopTokens.contains(try XCTUnwrap(tokenizer.specialTokenID("<|im_end|>"))))
    }

    /// 408 seeded random strings of hard cases (contractions in both cases, digits of several
    /// scripts, full-width forms, whitespace runs before newlines, emoji, Qwen's special tokens
    /// whole and cut) against Hugging Face `tokenizers` with `qwen3-tiny/tokenizer.json`.
    func testQwen3EqualsHuggingFaceOnRandomHardText() throws {
        let tokenizer = try HuggingFaceFile.load(path: try Fixtures.requireSharedData("qwen3-tiny/tokenizer.json"))
        let cases = try GemmaTokenizerTests.committedCases("qwen3_tiny_hard_cases.json")
        XCTAssertGreaterThan(cases.count, 400)
        var failures = 0
        for (index, item) in cases.enumerated() where tokenizer.encode(item.text) != item.ids {
            failures += 1
            if failures <= 5 { XCTFail("string \(index) \(item.text.debugDescription): \(tokenizer.encode(item.text)) but Hugging Face gives \(item.ids)") }
        }
        XCTAssertEqual(failures, 0, "strings that differ")
    }

    /// The rule survives a round trip through the `tokenizer.json` this engine writes.
    func testQwenRuleIsWrittenAndReadBack() throws {
        let tokenizer = try HuggingFaceFile.load(path: try Fixtures.requireSharedData("qwen3-tiny/tokenizer.json"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qwen-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try HuggingFaceFile.json(tokenizer).write(to: URL(fileURLWithPath: path))
        let reread = try HuggingFaceFile.load(path: path)
        XCTAssertEqual(reread.rules.preTokenization, .qwen2)
        XCTAssertEqual(reread.encode("x 12345 <|im_start|>y"), tokenizer.encode("x 12345 <|im_start|>y"))
    }
}
