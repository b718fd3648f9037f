import Foundation
import Kernels
@testable import Tokenizer

/// A small tokenizer trained in-process on generated text, so tests need no fixtures.
enum TokenizerFactory {
    static let sampleText: String = {
        let words = ["the", "cat", "sat", "on", "mat", "and", "dog", "ran", "über", "naïve", "café", "日本", "語", "🙃",
                     "don't", "it's", "1234", "x\u{301}", "résumé", "hello", "world"]
        var generator = SeededGenerator(seed: 11)
        var text = ""
        for line in 0..<400 {
            for _ in 0..<12 {
                text += words[Int(generator.next() % UInt64(words.count))]
                text += generator.next() % 7 == 0 ? ", " : " "
            }
            text += line % 25 == 24 ? "<|endoftext|>" : "\n"
        }
        return text
    }()

    static let specials = ["<|endoftext|>", "<|endoftext|><|endoftext|>"]

    static let trained: Tokenizer = {
        var bytes = Array(sampleText.utf8)
        return try! bytes.withUnsafeMutableBufferPointer {
            try BPETrainer.train(bytes: UnsafeBufferPointer($0), options: BPETrainingOptions(vocabSize: 400, specialTokens: specials))
        }
    }()
}
