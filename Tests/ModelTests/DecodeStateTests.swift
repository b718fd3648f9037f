import Foundation
import Kernels
import Model
import Tokenizer
import XCTest

/// The one decode loop body (``DecodeState``) against plain computations: log-probabilities
/// against a Double log-softmax, each logit processor against its definition, and every way a
/// request ends.
final class DecodeStateTests: XCTestCase {
    /// Logits of 50 tokens with a clear order (token 7 first, then 3, then 11, …).
    func logits(seed: UInt64 = 1) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        var values = (0..<50).map { _ in Float.random(in: -3...3, using: &generator) }
        values[7] = 9
        values[3] = 8
        values[11] = 7.5
        return values
    }

    func advance(_ state: inout DecodeState, _ logits: [Float], roomLeft: Bool = true) throws -> DecodeState.Step {
        try logits.withUnsafeBufferPointer { try state.advance($0, roomLeft: roomLeft) }
    }

    func testLogprobsAreTheModelsLogSoftmaxWhateverTheProcessors() throws {
        let values = logits()
        let maximum = Double(values.max()!)
        let logTotal = log(values.reduce(0.0) { $0 + exp(Double($1) - maximum) }) + maximum
        // Penalties and a bias that change the choice do not change what is reported.
        let options = GenerationOptions(temperature: 0, repetitionPenalty: 1.3, presencePenalty: 1, logitBias: [7: -100], logprobs: 3)
        var state = try DecodeState(prompt: [7, 3], options: options, vocabularySize: 50)
        let step = try advance(&state, values)
        XCTAssertEqual(step.token, 11, "7 banned; 3 penalised (8 / 1.3 < 7.5)")
        let logprob = try XCTUnwrap(step.logprob)
        XCTAssertEqual(Double(logprob.logprob), Double(values[11]) - logTotal, accuracy: 1e-5)
        XCTAssertEqual(logprob.top.map(\.token), [7, 3, 11])
        for (token, value) in logprob.top { XCTAssertEqual(Double(value), Double(values[Int(token)]) - logTotal, accuracy: 1e-5) }
        // No logprobs asked: none computed.
        var plain = try DecodeState(prompt: [1], options: GenerationOptions(temperature: 0), vocabularySize: 50)
        XCTAssertNil(try advance(&plain, values).logprob)
    }

    func testRepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokens() {
        var penalties = RepetitionPenalties(prompt: [0, 1], repetition: 2, presence: 0, frequency: 0)
        var values: [Float] = [4, -4, 4, -4]
        values.withUnsafeMutableBufferPointer { penalties.process($0) }
        XCTAssertEqual(values, [2, -8, 4, -4])
        penalties.learn(2)
        values = [4, -4, 4, -4]
        values.withUnsafeMutableBufferPointer { penalties.process($0) }
        XCTAssertEqual(values, [2, -8, 2, -4], "a sampled token joins the penalised set")
    }

    func testPresenceAndFrequencyCountTheAnswerOnly() {
        var penalties = RepetitionPenalties(prompt: [0, 0, 0], repetition: 1, presence: 0.5, frequency: 0.25)
        for token: Int32 in [1, 1, 2] { penalties.learn(token) }
        var values: [Float] = [1, 1, 1, 1]
        values.withUnsafeMutableBufferPointer { penalties.process($0) }
        XCTAssertEqual(values, [1, 1 - 0.5 - 0.5, 1 - 0.5 - 0.25, 1], "the prompt's token 0 is not penalised")
    }

    func testLogitBiasBansAndForces() throws {
        let values = logits()
        var banned = try DecodeState(prompt: [1], options: GenerationOptions(temperature: 0, logitBias: [7: -100, 3: -100]), vocabularySize: 50)
        XCTAssertEqual(try advance(&banned, values).token, 11)
        var forced = try DecodeState(prompt: [1], options: GenerationOptions(temperature: 1, seed: 3, logitBias: [40: 100]), vocabularySize: 50)
        for _ in 0..<20 { XCTAssertEqual(try advance(&forced, values).token, 40) }
        XCTAssertThrowsError(try DecodeState(prompt: [1], options: GenerationOptions(logitBias: [50: 1]), vocabularySize: 50)) {
            XCTAssertTrue("\($0)".contains("token id 50"), "\($0)")
        }
    }

    func testEveryEnding() throws {
        let values = logits()
        var stopped = try DecodeState(prompt: [1], options: GenerationOptions(temperature: 0, stopTokens: [7]), vocabularySize: 50)
        XCTAssertEqual(try advance(&stopped, values).finish, .stopToken(7))
        XCTAssertEqual(stopped.generated, 0, "a stop token is not part of the answer")
        var budget = try DecodeState(prompt: [1], options: GenerationOptions(maxTokens: 2, temperature: 0), vocabularySize: 50)
        XCTAssertNil(try advance(&budget, values).finish)
        XCTAssertEqual(try advance(&budget, values).finish, .maxTokens)
        var full = try DecodeState(prompt: [1], options: GenerationOptions(temperature: 0), vocabularySize: 50)
        XCTAssertEqual(try advance(&full, values, roomLeft: false).finish, .contextFull)
        var broken = values
        broken[5] = .nan
        var failing = try DecodeState(prompt: [1], options: GenerationOptions(temperature: 0), vocabularySize: 50)
        XCTAssertThrowsError(try advance(&failing, broken)) { XCTAssertTrue("\($0)".contains("logit 5 is nan"), "\($0)") }
    }

    func testStopStringsEndTheTextBeforeThem() throws {
        let text = String(repeating: "the cat sat on the mat. ", count: 30)
        let tokenizer = try Array(text.utf8).withUnsafeBufferPointer {
            try BPETrainer.train(bytes: $0, options: BPETrainingOptions(vocabSize: 280, specialTokens: ["<|endoftext|>"]))
        }
        let answer = tokenizer.encode(" sat on the mat.")
        var state = try DecodeState(prompt: tokenizer.encode("the cat"), options: GenerationOptions(temperature: 0), vocabularySize: tokenizer.vocabularySize,
                                    tokenizer: tokenizer, stopStrings: ["the m"])
        var shown = "", finish: DecodeState.Finish?
        for token in answer where finish == nil {
            // Logits that make `token` the greedy choice.
            var forcing = [Float](repeating: 0, count: tokenizer.vocabularySize)
            forcing[Int(token)] = 10
            let step = try advance(&state, forcing)
            shown += step.text
            finish = step.finish
        }
        XCTAssertEqual(finish, .stopString)
        XCTAssertEqual(shown, " sat on ")
    }
}
