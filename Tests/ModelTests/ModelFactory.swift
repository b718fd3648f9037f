import Kernels
@testable import Model
import TensorIO
import TestSupport
import Verification
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

    /// (f(v + step·e_i) − f(v − step·e_i)) / 2·step: the central difference of `f` along element
    /// `index` of `values` (which it leaves as it found them).
    static func centralDifference(_ f: ([Double]) -> Double, _ values: inout [Double], index: Int, step: Double) -> Double {
        let original = values[index]
        values[index] = original + step
        let above = f(values)
        values[index] = original - step
        let below = f(values)
        values[index] = original
        return (above - below) / (2 * step)
    }

    /// The gradients of `model`'s training session against central finite differences of the
    /// reference model's loss in Double, for every tensor at up to 16 positions each.
    static func checkBackwardAgainstFiniteDifferences(_ model: TransformerLM, batch: Int, length: Int, seed: UInt64,
                                                      file: StaticString = #filePath, line: UInt = #line) throws {
        let config = model.config
        let inputs = ModelFactory.tokens(batch * length, vocab: config.vocabSize, seed: seed + 1)
        // Repeated ids on purpose: the embedding's gradient must accumulate them.
        let targets = inputs.map { ($0 * 7 + 3) % Int32(config.vocabSize) }
        let session = try TrainingSession(model: model, batch: batch, length: length)
        let loss = try session.computeGradients(inputs: inputs, targets: targets)
        let gradient = session.gradients.array

        let parameters = model.parameters.array.map(Double.init)
        func referenceLoss(_ p: [Double]) -> Double {
            ReferenceModel.crossEntropy(logits: ReferenceModel.logits(parameters: p, config: config, tokens: inputs, batch: batch, length: length),
                                        targets: targets, vocab: config.vocabSize)
        }
        XCTAssertEqual(loss, referenceLoss(parameters), accuracy: 1e-5, "loss vs the reference in Double", file: file, line: line)
        // Every tensor, at up to 16 positions each (all of them for small tensors).
        var generator = SeededGenerator(seed: seed + 2)
        for entry in model.layout.entries {
            let picks = entry.count <= 16 ? Array(entry.range) : (0..<16).map { _ in entry.offset + Int(generator.next() % UInt64(entry.count)) }
            var probe = parameters
            var numeric: [Double] = [], analytic: [Float] = []
            for index in picks {
                numeric.append(centralDifference(referenceLoss, &probe, index: index, step: 1e-5))
                analytic.append(gradient[index])
            }
            assertClose(analytic, numeric, absolute: 2e-6, relative: 2e-3, "∂loss/∂\(entry.name) at B\(batch) T\(length)", file: file, line: line)
        }
    }
}
