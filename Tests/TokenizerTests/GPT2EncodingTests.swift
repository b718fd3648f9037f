import Foundation
import TestSupport
@testable import Tokenizer
import XCTest

/// Encoding with GPT-2's vocabulary and merges against the ids tiktoken produces
/// (`../shared/data/tokenizer/expected_gpt2_ids.json`).
final class GPT2EncodingTests: XCTestCase {
    /// Loaded once for all tests; nil when the fixtures are absent (each test then skips).
    static let loaded: Result<Tokenizer, Error>? = {
        let directory = Fixtures.sharedData.appendingPathComponent("tokenizer").path
        guard FileManager.default.fileExists(atPath: directory + "/gpt2_vocab.json") else { return nil }
        return Result { try GPT2Files.load(vocab: directory + "/gpt2_vocab.json", merges: directory + "/gpt2_merges.txt") }
    }()

    func gpt2() throws -> Tokenizer {
        _ = try Fixtures.requireSharedData("tokenizer/gpt2_vocab.json")
        _ = try Fixtures.requireSharedData("tokenizer/gpt2_merges.txt")
        return try Self.loaded!.get()
    }

    func expected() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.requireSharedData("tokenizer/expected_gpt2_ids.json")))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    func testEndOfTextIsRecognisedAsSpecial() throws {
        let tokenizer = try gpt2()
        XCTAssertEqual(tokenizer.specialTokenID("<|endoftext|>"), 50256)
        XCTAssertEqual(tokenizer.vocabularySize, 50257)
    }

    /// tiktoken's ids for whitespace runs that end the text or stand before a symbol.
    func testWhitespaceRunsAsTiktoken() throws {
        let tokenizer = try gpt2()
        XCTAssertEqual(tokenizer.encode("a \n\nb"), [64, 220, 198, 198, 65])
        XCTAssertEqual(tokenizer.encode("a \n\nb c"), [64, 220, 198, 198, 65, 269])
        XCTAssertEqual(tokenizer.encode("\n\n*"), [198, 198, 9])
    }

    func testInlineStrings() throws {
        let tokenizer = try gpt2()
        let strings = try expected()["strings"] as! [String: [String: Any]]
        for (name, entry) in strings {
            let text = entry["text"] as! String, ids = (entry["ids"] as! [Int]).map(Int32.init)
            XCTAssertEqual(tokenizer.encode(text), ids, name)
            XCTAssertEqual(try tokenizer.decode(ids), text, "\(name) decodes back")
        }
    }

    func testSampleFiles() throws {
        let tokenizer = try gpt2()
        let files = try expected()["files"] as! [String: [Int]]
        for (name, ids) in files {
            let text = try String(contentsOfFile: try Fixtures.requireSharedData("tokenizer/\(name)"), encoding: .utf8)
            let encoded = tokenizer.encode(text)
            if encoded != ids.map(Int32.init) {
                let firstDifference = zip(encoded, ids).enumerated().first { $0.element.0 != Int32($0.element.1) }?.offset ?? min(encoded.count, ids.count)
                XCTFail("\(name): first difference at id \(firstDifference) of \(ids.count) (got \(encoded.count) ids)")
            }
            XCTAssertEqual(tokenizer.encode(text, threads: 2), encoded, "\(name): parallel encoding equals serial")
            XCTAssertEqual(try tokenizer.decode(encoded), text, "\(name) round trip")
        }
    }
}
