import Foundation
@testable import Model
import XCTest

final class SamplerTests: XCTestCase {
    /// Logits whose softmax is exactly `probabilities`.
    func logits(_ probabilities: [Double]) -> [Float] { probabilities.map { Float(log($0)) } }

    func draw(_ sampler: inout some Sampler, _ logits: [Float], times: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: logits.count)
        logits.withUnsafeBufferPointer { buffer in
            for _ in 0..<times { counts[Int(sampler.sample(buffer))] += 1 }
        }
        return counts
    }

    func testGreedyPicksTheArgmax() {
        let sampler = GreedySampler()
        let values: [Float] = [0.1, 3, -2, 2.9]
        XCTAssertEqual(values.withUnsafeBufferPointer { sampler.sample($0) }, 1)
    }

    func testFrequenciesMatchTheDistribution() throws {
        let p = [0.4, 0.3, 0.15, 0.1, 0.05]
        var sampler = try NucleusSampler(temperature: 1, topP: 1, seed: 1)
        let n = 20_000
        let counts = draw(&sampler, logits(p), times: n)
        for (i, probability) in p.enumerated() {
            let frequency = Double(counts[i]) / Double(n)
            let sigma = (probability * (1 - probability) / Double(n)).squareRoot()
            XCTAssertEqual(frequency, probability, accuracy: 4.5 * sigma, "token \(i)")
        }
    }

    func testTopPNeverLeavesTheNucleusAndRenormalises() throws {
        // Sorted mass: 0.5, 0.8 (crosses 0.75: token 1 stays), so the nucleus is {0, 1}.
        let p = [0.5, 0.3, 0.1, 0.05, 0.05]
        var sampler = try NucleusSampler(temperature: 1, topP: 0.75, seed: 2)
        let n = 20_000
        let counts = draw(&sampler, logits(p), times: n)
        XCTAssertEqual(counts[2] + counts[3] + counts[4], 0, "nothing outside the nucleus")
        let expected = 0.5 / 0.8, sigma = (expected * (1 - expected) / Double(n)).squareRoot()
        XCTAssertEqual(Double(counts[0]) / Double(n), expected, accuracy: 4.5 * sigma)
    }

    func testTopPExactlyAtABoundaryKeepsJustThatToken() throws {
        var sampler = try NucleusSampler(temperature: 1, topP: 0.5, seed: 3)
        XCTAssertEqual(draw(&sampler, logits([0.5, 0.3, 0.2]), times: 2_000), [2_000, 0, 0])
    }

    func testTemperatureSharpens() throws {
        let p = [0.6, 0.4]
        var cold = try NucleusSampler(temperature: 0.25, topP: 1, seed: 4)
        let counts = draw(&cold, logits(p), times: 10_000)
        // softmax(log p / 0.25) ∝ p⁴: 0.1296 / (0.1296 + 0.0256) ≈ 0.835.
        XCTAssertEqual(Double(counts[0]) / 10_000, 0.1296 / 0.1552, accuracy: 0.02)
    }

    func testSameSeedSameDraws() throws {
        var a = try NucleusSampler(temperature: 1, topP: 0.9, seed: 9), b = try NucleusSampler(temperature: 1, topP: 0.9, seed: 9)
        let values = logits([0.2, 0.2, 0.2, 0.2, 0.2])
        XCTAssertEqual(draw(&a, values, times: 100), draw(&b, values, times: 100))
    }

    func testTopKNeverLeavesTheKMostLikelyAndRenormalises() throws {
        let p = [0.05, 0.4, 0.1, 0.3, 0.15]
        var sampler = try NucleusSampler(temperature: 1, topP: 1, seed: 5, topK: 2)
        let n = 20_000
        let counts = draw(&sampler, logits(p), times: n)
        XCTAssertEqual(counts[0] + counts[2] + counts[4], 0, "only tokens 1 and 3 (the two most likely)")
        let expected = 0.4 / 0.7, sigma = (expected * (1 - expected) / Double(n)).squareRoot()
        XCTAssertEqual(Double(counts[1]) / Double(n), expected, accuracy: 4.5 * sigma)
        // Top-k 1 is greedy, whatever the temperature.
        var one = try NucleusSampler(temperature: 1.5, topP: 1, seed: 6, topK: 1)
        XCTAssertEqual(draw(&one, logits(p), times: 500)[1], 500)
    }

    func testMinPDropsTokensBelowTheShareOfTheMostLikely() throws {
        // min-p 0.3 of 0.4 = 0.12: tokens 0 (0.05) and 2 (0.1) go; 4 (0.15) stays.
        let p = [0.05, 0.4, 0.1, 0.3, 0.15]
        var sampler = try NucleusSampler(temperature: 1, topP: 1, seed: 7, minP: 0.3)
        let n = 20_000
        let counts = draw(&sampler, logits(p), times: n)
        XCTAssertEqual(counts[0] + counts[2], 0)
        let expected = 0.15 / 0.85, sigma = (expected * (1 - expected) / Double(n)).squareRoot()
        XCTAssertEqual(Double(counts[4]) / Double(n), expected, accuracy: 4.5 * sigma)
    }

    func testTopPAfterTopKIsAShareOfTheKeptMass() throws {
        // Top-k 3 keeps 0.4, 0.3, 0.15 (mass 0.85); top-p 0.8 of that is 0.68: 0.4 + 0.3 = 0.7 crosses it.
        let p = [0.05, 0.4, 0.1, 0.3, 0.15]
        var sampler = try NucleusSampler(temperature: 1, topP: 0.8, seed: 8, topK: 3)
        let counts = draw(&sampler, logits(p), times: 5_000)
        XCTAssertEqual(counts[0] + counts[2] + counts[4], 0)
    }

    func testOutOfRangeOptionsAreTypedErrorsNamingTheOption() {
        let cases: [(GenerationOptions, GenerationOption)] = [
            (GenerationOptions(topK: -1), .topK), (GenerationOptions(minP: 2), .minP), (GenerationOptions(temperature: -1), .temperature),
            (GenerationOptions(topP: 0), .topP), (GenerationOptions(maxTokens: -1), .maxTokens), (GenerationOptions(frequencyPenalty: -3), .frequencyPenalty),
            (GenerationOptions(logitBias: [-1: 1]), .logitBias), (GenerationOptions(logprobs: 30), .topLogprobs),
        ]
        for (options, option) in cases {
            XCTAssertThrowsError(try options.validate()) { error in
                guard case .invalidOption(let named, _)? = error as? GenerationError else { return XCTFail("\(error)") }
                XCTAssertEqual(named, option)
            }
        }
        XCTAssertEqual(GenerationOption.topLogprobs.flag, "top-logprobs")
        XCTAssertEqual(GenerationOption.repetitionPenalty.field, "repetition_penalty")
    }

    func testOutOfRangeTruncationsAreNamed() {
        XCTAssertThrowsError(try NucleusSampler(temperature: 1, topP: 1, seed: 0, topK: -1)) { XCTAssertTrue("\($0)".contains("top-k")) }
        XCTAssertThrowsError(try NucleusSampler(temperature: 1, topP: 1, seed: 0, minP: 1.5)) { XCTAssertTrue("\($0)".contains("min-p")) }
        XCTAssertThrowsError(try GenerationOptions(repetitionPenalty: 0).validate()) { XCTAssertTrue("\($0)".contains("repetition-penalty")) }
        XCTAssertThrowsError(try GenerationOptions(presencePenalty: 3).validate()) { XCTAssertTrue("\($0)".contains("presence-penalty")) }
        XCTAssertThrowsError(try GenerationOptions(logitBias: [3: 200]).validate()) { XCTAssertTrue("\($0)".contains("logit-bias")) }
        XCTAssertThrowsError(try GenerationOptions(logprobs: 21).validate()) { XCTAssertTrue("\($0)".contains("top-logprobs")) }
    }
}
