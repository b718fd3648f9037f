import Foundation
@testable import Tokenizer

/// A small tokenizer trained in-process on generated text, so tests need no fixtures.
enum TokenizerFactory {
    static let sampleText: String = {
        let words = ["the", "cat", "sat", "on", "mat", "and", "dog", "ran", "über", "naïve", "café", "日本", "語", "🙃",
                     "don't", "it's", "1234", "x\u{301}", "résumé", "hello", "world"]
        var generator = SplitMix(seed: 11)
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

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
