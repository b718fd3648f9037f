import Foundation
@testable import Tokenizer
import XCTest

final class FileFormatTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func file(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    func write(_ name: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: URL(fileURLWithPath: file(name)))
        return file(name)
    }

    func assertError(_ body: @autoclosure () throws -> Any, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(text), "'\(error)' should mention '\(text)'", file: file, line: line)
        }
    }

    func testSavedFilesLoadBackIdentically() throws {
        let tokenizer = TokenizerFactory.trained
        try TokenizerDirectory.save(tokenizer, to: directory)
        let fromGPT2 = try GPT2Files.load(vocab: file("vocab.json"), merges: file("merges.txt"))
        let fromJSON = try HuggingFaceFile.load(path: file("tokenizer.json"))
        for loaded in [fromGPT2, fromJSON, try TokenizerDirectory.load(directory)] {
            XCTAssertEqual(loaded.vocabulary, tokenizer.vocabulary)
            XCTAssertEqual(loaded.merges.map(\.result), tokenizer.merges.map(\.result))
            XCTAssertEqual(Set(loaded.specialTokens.map(\.text)), Set(tokenizer.specialTokens.map(\.text)))
            XCTAssertEqual(loaded.encode(TokenizerFactory.sampleText), tokenizer.encode(TokenizerFactory.sampleText))
        }
        // vocab.json is valid JSON with ids in order, specials as their literal text.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file("vocab.json")))) as! [String: Int]
        XCTAssertEqual(json["<|endoftext|>"], 0)
        XCTAssertEqual(json["Ġ"], 2 + 220)
    }

    func testMalformedFilesNameTheProblem() throws {
        let vocab = try write("vocab.json", #"{"a": 0, "b": 1}"#)
        assertError(try GPT2Files.load(vocab: vocab, merges: try write("m1.txt", "a b\n")), contains: "merge result 'ab' is not in")
        assertError(try GPT2Files.load(vocab: vocab, merges: try write("m0.txt", "")), contains: "single byte")
        var full: [String: Int] = [:]
        for (id, byte) in ByteLevel.byteOrder.enumerated() { full[ByteLevel.encode([byte])] = id }
        full["ab"] = 256
        let fullVocab = file("full.json")
        try JSONSerialization.data(withJSONObject: full).write(to: URL(fileURLWithPath: fullVocab))
        XCTAssertNoThrow(try GPT2Files.load(vocab: fullVocab, merges: try write("ok.txt", "#version: 0.2\na b\n")))
        assertError(try GPT2Files.load(vocab: fullVocab, merges: try write("m2.txt", "#version: 0.2\na b\nab\n")), contains: "line 3")
        assertError(try GPT2Files.load(vocab: fullVocab, merges: try write("m3.txt", "a c\nzz q\n")), contains: "line 1")
        assertError(try GPT2Files.load(vocab: try write("bad.json", "[1, 2]"), merges: file("ok.txt")), contains: "not a JSON object")
        assertError(try GPT2Files.load(vocab: try write("badid.json", #"{"a": "zero"}"#), merges: file("ok.txt")), contains: "key 'a'")
        assertError(try GPT2Files.load(vocab: file("nothere.json"), merges: file("ok.txt")), contains: "nothere.json")
        assertError(try HuggingFaceFile.load(path: try write("t1.json", #"{"model": {"type": "WordPiece"}}"#)), contains: "model.type")
        assertError(try HuggingFaceFile.load(path: try write("t2.json", #"{"model": {"type": "BPE", "merges": []}}"#)), contains: "model.vocab")
        assertError(try HuggingFaceFile.load(path: try write("t3.json", "{")), contains: "t3.json: line 1, column 2: expected")
        assertError(try TokenizerDirectory.load(file("empty-dir")), contains: "no tokenizer here")
    }

    func testTrainingRejectsImpossibleRequests() throws {
        let text = try write("corpus.txt", "some text to train on\n")
        assertError(try BPETrainer.train(file: text, options: BPETrainingOptions(vocabSize: 256, specialTokens: ["<s>"])), contains: "below 256")
        assertError(try BPETrainer.train(file: text, options: BPETrainingOptions(vocabSize: 300, specialTokens: ["<s>", "<s>"])), contains: "more than once")
        assertError(try BPETrainer.train(file: file("missing.txt"), options: BPETrainingOptions(vocabSize: 300)), contains: "no such file")
        try Data([0x61, 0x0A, 0x62, 0xFF, 0x63]).write(to: URL(fileURLWithPath: file("binary.txt")))
        assertError(try BPETrainer.train(file: file("binary.txt"), options: BPETrainingOptions(vocabSize: 300)), contains: "offset 3 (line 2)")
    }

    func testTrainingStopsWhenNothingIsLeftToMerge() throws {
        let text = try write("tiny.txt", "ab ab")
        let tokenizer = try BPETrainer.train(file: text, options: BPETrainingOptions(vocabSize: 1000))
        // Pieces "ab" and " ab": merges (a, b), ( , ab) and nothing more.
        XCTAssertEqual(tokenizer.vocabularySize, 256 + 2)
    }

    func testParallelCountingEqualsSerial() throws {
        let text = String(repeating: TokenizerFactory.sampleText, count: 30)
        let path = try write("big.txt", text)
        let one = try BPETrainer.train(file: path, options: BPETrainingOptions(vocabSize: 350, specialTokens: ["<|endoftext|>"], threads: 1))
        let two = try BPETrainer.train(file: path, options: BPETrainingOptions(vocabSize: 350, specialTokens: ["<|endoftext|>"], threads: 2))
        XCTAssertEqual(one.vocabulary, two.vocabulary)
    }
}
