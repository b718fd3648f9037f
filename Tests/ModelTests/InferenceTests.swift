import Kernels
@testable import Model
import TestSupport
import XCTest

final class InferenceTests: XCTestCase {
    func testCachedDecodeEqualsFullForward() throws {
        let model = try ModelFactory.model()
        let vocab = model.config.vocabSize
        let tokens = ModelFactory.tokens(20, vocab: vocab, seed: 1)
        let full = try model.forward(tokens: tokens, batch: 1, length: 20)

        // One pass, all logits.
        let session = InferenceSession(model: model)
        assertClose(try session.append(tokens, allLogits: true), full, absolute: 1e-5, relative: 1e-4, "prefill in one pass")

        // Prefill in chunks of 7 (a chunked pass over the cache).
        let chunked = InferenceSession(model: model, maxChunk: 7)
        assertClose(try chunked.append(tokens, allLogits: true), full, absolute: 1e-5, relative: 1e-4, "prefill in chunks of 7")

        // Prefill 12 tokens, then one cached step at a time.
        session.reset()
        var stepwise = try session.append(Array(tokens[0..<12]), allLogits: true)
        for token in tokens[12...] { stepwise += try session.append([token]) }
        assertClose(stepwise, full, absolute: 1e-5, relative: 1e-4, "prefill 12 + 8 cached steps")
        XCTAssertEqual(session.position, 20)
    }

    func testBatchedForwardEqualsEachSequenceAlone() throws {
        let model = try ModelFactory.model()
        let a = ModelFactory.tokens(9, vocab: 53, seed: 2), b = ModelFactory.tokens(9, vocab: 53, seed: 3)
        let both = try model.forward(tokens: a + b, batch: 2, length: 9)
        let first = try model.forward(tokens: a, batch: 1, length: 9), second = try model.forward(tokens: b, batch: 1, length: 9)
        assertClose(both, first + second, absolute: 1e-6, relative: 1e-5, "batch of 2 vs one at a time")
    }

    func testSingleTokenSequences() throws {
        let model = try ModelFactory.model()
        let logits = try model.forward(tokens: [5], batch: 1, length: 1)
        XCTAssertEqual(logits.count, 53)
        XCTAssertTrue(logits.allSatisfy(\.isFinite))
        assertClose(try InferenceSession(model: model).append([5]), logits, absolute: 1e-6, relative: 1e-5, "T = 1")
    }

    func testBadInputIsRejectedAndLeavesTheCacheUnchanged() throws {
        let model = try ModelFactory.model()
        XCTAssertThrowsError(try model.forward(tokens: [1, 2, 3], batch: 2, length: 2)) { XCTAssertTrue("\($0)".contains("[2, 2]")) }
        XCTAssertThrowsError(try model.forward(tokens: [1, 53], batch: 1, length: 2)) { XCTAssertTrue("\($0)".contains("id 53 at [0, 1]")) }
        XCTAssertThrowsError(try model.forward(tokens: [Int32](repeating: 1, count: 25), batch: 1, length: 25)) {
            XCTAssertTrue("\($0)".contains("exceeds context_length 24"))
        }
        let session = InferenceSession(model: model)
        _ = try session.append([Int32](repeating: 3, count: 20))
        XCTAssertThrowsError(try session.append([Int32](repeating: 3, count: 5))) { XCTAssertTrue("\($0)".contains("exceed context_length")) }
        XCTAssertThrowsError(try session.append([-1])) { XCTAssertTrue("\($0)".contains("id -1")) }
        XCTAssertEqual(session.position, 20, "a rejected append changes nothing")
    }

    func testGenerationIsReproducibleAndSlidesPastTheContext() throws {
        let model = try ModelFactory.model()
        func run(seed: UInt64) throws -> ([Int32], GenerationReport) {
            var produced: [Int32] = []
            let report = try Generator(model: model).generate(
                prompt: [1, 2, 3], options: GenerationOptions(maxTokens: 60, temperature: 0.9, topP: 0.9, seed: seed)) {
                    produced.append($0)
                    return true
                }
            return (produced, report)
        }
        let (first, report) = try run(seed: 42)
        let (again, _) = try run(seed: 42)
        let (other, _) = try run(seed: 43)
        XCTAssertEqual(first, again, "same seed, same tokens")
        XCTAssertNotEqual(first, other, "another seed, other tokens")
        XCTAssertEqual(report.generatedTokens, 60)
        XCTAssertGreaterThan(report.contextSlides, 0, "60 tokens in a 24-token context must slide")
    }

    func testGenerationStopsAtAStopToken() throws {
        let model = try ModelFactory.model()
        // Greedy decoding is deterministic: find its first token and make it the stop token.
        var firstToken: Int32 = -1
        _ = try Generator(model: model).generate(prompt: [4], options: GenerationOptions(maxTokens: 1, temperature: 0)) {
            firstToken = $0
            return true
        }
        var count = 0
        let report = try Generator(model: model).generate(
            prompt: [4], options: GenerationOptions(maxTokens: 50, temperature: 0, stopTokens: [firstToken])) { _ in
                count += 1
                return true
            }
        XCTAssertEqual(report.ending, .stopToken(firstToken))
        XCTAssertEqual(count, 1)
    }

    func testImpossibleOptionsAreRejected() throws {
        let model = try ModelFactory.model()
        for options in [GenerationOptions(temperature: .nan), GenerationOptions(temperature: -1), GenerationOptions(topP: 0),
                        GenerationOptions(topP: 1.5), GenerationOptions(topP: .nan), GenerationOptions(maxTokens: -1)] {
            XCTAssertThrowsError(try Generator(model: model).generate(prompt: [1], options: options) { _ in true })
        }
        XCTAssertThrowsError(try Generator(model: model).generate(prompt: [], options: GenerationOptions()) { _ in true })
    }
}

final class ActivationModeTests: XCTestCase {
    /// Training mode keeps every layer's intermediates for backward; inference mode reuses one
    /// layer's worth. Both must give the same logits, and what training kept for each layer must
    /// still be that layer's own after the whole pass (not overwritten by a later layer).
    func testTrainingAndInferenceModesAgree() throws {
        let model = try ModelFactory.model()
        let (batch, length) = (2, 9)
        let tokens = ModelFactory.tokens(batch * length, vocab: 53, seed: 21)
        let inference = try model.forward(tokens: tokens, batch: batch, length: length)
        let saved = ForwardActivations(config: model.config, rows: batch * length, keys: length, mode: .training, kernel: .standard)
        tokens.withUnsafeBufferPointer { model.forward(tokens: $0, batch: batch, into: saved, logitRows: 0..<(batch * length)) }
        XCTAssertEqual(saved.logits!.array, inference)
        // Layer 1's kept input must be block 0 applied to the kept embedding, recomputed alone.
        let dims = model.attentionDims(batch: batch, length: length)
        let embedding = saved.residual(0, rows: batch * length).array
        var recomputed = [Float](repeating: 0, count: embedding.count)
        try embedding.withUnsafeBufferPointer { hidden in
            try recomputed.withUnsafeMutableBufferPointer { try model.forwardBlock(0, hidden: hidden, batch: batch, length: length, output: $0) }
        }
        XCTAssertEqual(saved.layer(1, dims: dims).input.array, recomputed)
        XCTAssertNotEqual(embedding, recomputed)
        guard case .probabilities(let first) = saved.layer(0, dims: dims).attention,
              case .probabilities(let second) = saved.layer(1, dims: dims).attention else {
            return XCTFail("the standard kernel keeps probabilities")
        }
        XCTAssertNotEqual(first.array, second.array, "each layer keeps its own attention weights")
    }
}

/// A session sized below the model's context holds that many tokens, and computes what the
/// full-size one does on them.
final class ShorterSessionTests: XCTestCase {
    func testASessionCanHoldLessThanTheModelsContext() throws {
        let model = try ModelFactory.model()
        let short = InferenceSession(model: model, context: 10), full = InferenceSession(model: model)
        XCTAssertEqual(short.context, 10)
        let prompt: [Int32] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        XCTAssertEqual(try short.append(prompt), try full.append(prompt))
        XCTAssertEqual(Array(try short.step(4)), Array(try full.step(4)))
        XCTAssertThrowsError(try short.step(5)) { XCTAssertTrue("\($0)".contains("full"), "\($0)") }
    }
}
