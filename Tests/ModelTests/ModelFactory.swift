import Kernels
@testable import Model

/// Small configurations for self-contained model tests.
enum ModelFactory {
    /// Grouped-query attention, awkward sizes, a short context.
    static let small = ModelConfig(vocabSize: 53, contextLength: 24, dModel: 32, numLayers: 2, numHeads: 4,
                                   dFF: 44, ropeTheta: 10_000, numKVHeads: 2)

    static func model(_ config: ModelConfig = small, seed: UInt64 = 7) throws -> TransformerLM {
        try TransformerLM(config: config, seed: seed)
    }

    static func tokens(_ count: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Int32.random(in: 0..<Int32(vocab), using: &generator) }
    }
}
