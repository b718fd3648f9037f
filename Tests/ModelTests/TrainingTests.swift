import Foundation
import Kernels
@testable import Model
import TestSupport
import Verification
import XCTest

/// The whole model's backward, against central finite differences of the reference model in
/// Double, and the behaviours training relies on.
final class TrainingTests: XCTestCase {
    /// Tiny, with grouped-query heads (4 over 2) and sizes that are not powers of two.
    static let tiny = ModelConfig(vocabSize: 13, contextLength: 8, dModel: 16, numLayers: 2, numHeads: 4,
                                  dFF: 20, ropeTheta: 100, numKVHeads: 2)

    /// A model whose gains are not 1 (a gain of 1 hides a missing or transposed gradient term).
    func tinyModel(seed: UInt64) throws -> TransformerLM {
        let model = try TransformerLM(config: Self.tiny, seed: seed)
        var generator = SeededGenerator(seed: seed + 100)
        for entry in model.layout.entries where entry.role == .gain {
            let gains = model.parameters.slice(entry.offset, entry.count)
            for i in gains.indices { gains[i] = Float.random(in: 0.5...1.5, using: &generator) }
        }
        return model
    }

    func gradients(_ session: TrainingSession, inputs: [Int32], targets: [Int32]) throws -> (loss: Double, gradients: [Float]) {
        let loss = try session.computeGradients(inputs: inputs, targets: targets)
        return (loss, session.gradients.array)
    }

    func checkBackwardAgainstFiniteDifferences(batch: Int, length: Int, seed: UInt64) throws {
        try ModelFactory.checkBackwardAgainstFiniteDifferences(try tinyModel(seed: seed), batch: batch, length: length, seed: seed)
    }

    func testBackwardMatchesFiniteDifferencesOfTheReference() throws {
        try checkBackwardAgainstFiniteDifferences(batch: 2, length: 7, seed: 1)
    }

    func testBackwardOfSingleTokenSequences() throws {
        try checkBackwardAgainstFiniteDifferences(batch: 3, length: 1, seed: 2)
    }

    func testGradientsDoNotDependOnTheThreadCount() throws {
        let config = ModelFactory.small
        let big = try TransformerLM(config: config, seed: 4)
        let inputs = ModelFactory.tokens(4 * 24, vocab: config.vocabSize, seed: 5)
        let targets = ModelFactory.tokens(4 * 24, vocab: config.vocabSize, seed: 6)
        let saved = Threading.count
        defer { Threading.count = saved }
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            Threading.count = threads
            let session = try TrainingSession(model: big, batch: 4, length: 24)
            results.append(try gradients(session, inputs: inputs, targets: targets).gradients)
        }
        let scale = results[0].map { abs(Double($0)) }.max()!
        assertClose(results[1], results[0].map(Double.init), absolute: 1e-5 * scale, "gradients at 2 threads vs 1")
        assertClose(results[2], results[0].map(Double.init), absolute: 1e-5 * scale, "gradients at 3 threads vs 1")
    }

    func testLossAtInitialisationIsNearLogVocabAndATinyModelOverfitsOneBatch() throws {
        let config = ModelConfig(vocabSize: 37, contextLength: 16, dModel: 32, numLayers: 2, numHeads: 4, dFF: 64, ropeTheta: 10_000)
        let model = try TransformerLM(config: config, seed: 8)
        let (batch, length) = (4, 16)
        let inputs = ModelFactory.tokens(batch * length, vocab: config.vocabSize, seed: 9)
        let targets = ModelFactory.tokens(batch * length, vocab: config.vocabSize, seed: 10)
        let step = try TrainStep(model: model, optimizer: try AdamW(layout: model.layout, options: AdamWOptions(weightDecay: 0)),
                                 batch: batch, length: length, maxGradientNorm: 1)
        var first = 0.0, last = 0.0
        try inputs.withUnsafeBufferPointer { inputs in
            try targets.withUnsafeBufferPointer { targets in
                for index in 0..<150 {
                    let loss = try step.run(inputs: inputs, targets: targets, learningRate: 1e-2).loss
                    if index == 0 { first = loss }
                    last = loss
                }
            }
        }
        XCTAssertEqual(first, log(Double(config.vocabSize)), accuracy: 0.35, "loss at initialisation ≈ ln V")
        XCTAssertLessThan(last, 0.05, "150 steps on one batch of random tokens memorise it (first loss \(first))")
    }

    func testBadTargetsAreNamed() throws {
        let model = try tinyModel(seed: 11)
        let session = try TrainingSession(model: model, batch: 1, length: 3)
        let inputs: [Int32] = [1, 2, 3], targets: [Int32] = [4, 13, 5]
        XCTAssertThrowsError(try gradients(session, inputs: inputs, targets: targets)) {
            XCTAssertTrue("\($0)".contains("targets: id 13 at [0, 1]"), "\($0)")
        }
        XCTAssertThrowsError(try TrainingSession(model: model, batch: 1, length: 9))
    }
}

/// AdamW, the schedule and clipping against their formulas computed here by hand.
final class OptimizerTests: XCTestCase {
    func testAdamWFollowsTheHandoutsAlgorithm() throws {
        let config = TrainingTests.tiny
        let layout = ParameterLayout(config: config)
        let options = AdamWOptions(beta1: 0.8, beta2: 0.9, epsilon: 1e-6, weightDecay: 0.3)
        let optimizer = try AdamW(layout: layout, options: options)
        var generator = SeededGenerator(seed: 12)
        let parameters = TensorBuffer(generator.uniform(layout.totalCount))
        var expected = parameters.array.map(Double.init)
        var m = [Double](repeating: 0, count: layout.totalCount), v = m
        let rates: [Float] = [0.1, 0.05, 0.02]
        for (t, rate) in rates.enumerated() {
            let gradients = TensorBuffer(generator.uniform(layout.totalCount, scale: 3))
            optimizer.step(parameters: parameters, gradients: gradients, learningRate: rate)
            let step = Double(t + 1), (b1, b2, alpha) = (0.8, 0.9, Double(rate))
            let adjusted = alpha * (1 - pow(b2, step)).squareRoot() / (1 - pow(b1, step))
            for entry in layout.entries {
                let decay = entry.role == .gain ? 0 : 0.3
                for i in entry.range {
                    let g = Double(gradients.array[i])
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    expected[i] -= adjusted * m[i] / (v[i].squareRoot() + 1e-6)
                    expected[i] -= alpha * decay * expected[i]
                }
            }
        }
        XCTAssertEqual(optimizer.step, 3)
        assertClose(parameters.array, expected, absolute: 1e-6, relative: 1e-5, "θ after three AdamW steps")
        assertClose(optimizer.firstMoment.array, m, absolute: 1e-6, relative: 1e-5, "first moment")
        assertClose(optimizer.secondMoment.array, v, absolute: 1e-6, relative: 1e-5, "second moment")
    }

    func testDecayOfGainsIsAnOption() throws {
        let layout = ParameterLayout(config: TrainingTests.tiny)
        let gain = layout.required("ln_final.weight"), matrix = layout.required("lm_head.weight")
        for decayGains in [false, true] {
            let optimizer = try AdamW(layout: layout, options: AdamWOptions(weightDecay: 0.5, decayGains: decayGains))
            let parameters = TensorBuffer([Float](repeating: 1, count: layout.totalCount))
            optimizer.step(parameters: parameters, gradients: TensorBuffer(count: layout.totalCount), learningRate: 0.1)
            // Zero gradients: only the decay moves θ, by a factor 1 − α·λ = 0.95.
            XCTAssertEqual(parameters.array[matrix.offset], 0.95, accuracy: 1e-6)
            XCTAssertEqual(parameters.array[gain.offset], decayGains ? 0.95 : 1, accuracy: 1e-6)
        }
        XCTAssertThrowsError(try AdamW(layout: layout, options: AdamWOptions(beta2: 1)))
    }

    func testCosineScheduleAtItsLandmarks() throws {
        let schedule = CosineSchedule(maxLearningRate: 1e-3, minLearningRate: 1e-4, warmupSteps: 10, cosineSteps: 110)
        try schedule.validate()
        XCTAssertEqual(schedule.learningRate(at: 0), 0)
        XCTAssertEqual(schedule.learningRate(at: 5), 5e-4, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(at: 10), 1e-3, accuracy: 1e-12, "end of warm-up")
        XCTAssertEqual(schedule.learningRate(at: 60), 5.5e-4, accuracy: 1e-12, "half-way down the cosine")
        XCTAssertEqual(schedule.learningRate(at: 110), 1e-4, accuracy: 1e-12, "T_c")
        XCTAssertEqual(schedule.learningRate(at: 500), 1e-4, "after T_c")
        XCTAssertThrowsError(try CosineSchedule(maxLearningRate: 1e-3, minLearningRate: 1e-4, warmupSteps: 10, cosineSteps: 5).validate())
    }

    func testClippingScalesOnlyLargeGradients() {
        let small = TensorBuffer([0.3, -0.4])
        XCTAssertEqual(GradientClipping.clip(small, maxNorm: 1), 0.5, accuracy: 1e-7)
        XCTAssertEqual(small.array, [0.3, -0.4], "left alone under the bound")
        let large = TensorBuffer([3, -4])
        XCTAssertEqual(GradientClipping.clip(large, maxNorm: 1), 5, accuracy: 1e-6)
        XCTAssertEqual(large.array[0], Float(3 / (5 + 1e-6)), accuracy: 1e-7)
        XCTAssertEqual(large.array[1], Float(-4 / (5 + 1e-6)), accuracy: 1e-7)
        XCTAssertEqual(GradientClipping.norm(large), 1, accuracy: 1e-6, "scaled to the bound")
        // A buffer long enough to be summed in parallel chunks.
        let long = TensorBuffer([Float](repeating: 0.01, count: 300_000))
        XCTAssertEqual(GradientClipping.norm(long), (300_000 * 1e-4).squareRoot(), accuracy: 1e-6)
    }
}
