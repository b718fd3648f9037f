import Foundation
import TestSupport
@testable import Tokenizer
import XCTest

final class TrainingTests: XCTestCase {
    /// Training corpus.en at vocab 500 with <|endoftext|> reproduces the CS336 reference exactly.
    func testReproducesTheReferenceVocabularyAndMerges() throws {
        let corpus = try Fixtures.requireSharedData("tokenizer/corpus.en")
        let referenceVocab = try Fixtures.requireSharedData("tokenizer/train-bpe-reference-vocab.json")
        let referenceMerges = try Fixtures.requireSharedData("tokenizer/train-bpe-reference-merges.txt")
        let tokenizer = try BPETrainer.train(file: corpus, options: BPETrainingOptions(vocabSize: 500, specialTokens: ["<|endoftext|>"]))
        let reference = try GPT2Files.load(vocab: referenceVocab, merges: referenceMerges, specialTokens: ["<|endoftext|>"])
        XCTAssertEqual(tokenizer.vocabulary.count, 500)
        XCTAssertEqual(tokenizer.vocabulary, reference.vocabulary, "vocabulary, ids included")
        let ours = tokenizer.merges.map { "\($0.left) \($0.right)" }, theirs = reference.merges.map { "\($0.left) \($0.right)" }
        if let first = zip(ours, theirs).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            XCTFail("merge \(first.offset + 1) differs: ours \(ByteLevel.encode(tokenizer.vocabulary[Int(tokenizer.merges[first.offset].left)])) \(ByteLevel.encode(tokenizer.vocabulary[Int(tokenizer.merges[first.offset].right)])), reference \(ByteLevel.encode(reference.vocabulary[Int(reference.merges[first.offset].left)])) \(ByteLevel.encode(reference.vocabulary[Int(reference.merges[first.offset].right)]))")
        }
        XCTAssertEqual(ours.count, theirs.count)
        XCTAssertEqual(try String(contentsOfFile: referenceMerges, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init),
                       String(decoding: GPT2Files.mergesText(tokenizer), as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init),
                       "merges.txt text")
    }
}
