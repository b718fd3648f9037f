import Kernels
@testable import Model
import TensorIO
import XCTest

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

    /// `model`'s logits on a fixture's prompt (`idsFile`, NPY ids) against its reference logits
    /// (`logitsFile`): the prompt, the reference and the largest |Δ|, which is printed after `label`.
    static func logitGap(_ model: TransformerLM, ids idsFile: String, logits logitsFile: String,
                         label: String) throws -> (ids: [Int32], expected: [Float], worst: Float) {
        let ids = try NPYFile(path: idsFile).integers().map { Int32($0) }
        let expected = try NPYFile(path: logitsFile).floats()
        let logits = try model.forward(tokens: ids, batch: 1, length: ids.count)
        XCTAssertEqual(logits.count, expected.count, label)
        let worst = zip(logits, expected).map { abs($0 - $1) }.max()!
        print("\(label): max |Δ| of the logits against transformers \(worst)")
        return (ids, expected, worst)
    }
}
