import Foundation
import Kernels
@testable import Model
import TestSupport
import XCTest

/// The model with either attention kernel: same logits, same gradients, same cached prefill;
/// and the rule that picks one.
final class AttentionKernelTests: XCTestCase {
    /// Grouped-query heads and a length that crosses the 128-row query tile unevenly.
    static let config = ModelConfig(vocabSize: 37, contextLength: 160, dModel: 32, numLayers: 2, numHeads: 4,
                                    dFF: 40, ropeTheta: 10_000, numKVHeads: 2)

    func model(_ kernel: AttentionKernel) throws -> TransformerLM {
        let model = try TransformerLM(config: Self.config, seed: 31)
        model.attention = .forced(kernel)
        return model
    }

    func testLogitsAgreeBetweenKernels() throws {
        let tokens = ModelFactory.tokens(2 * 150, vocab: 37, seed: 32)
        let standard = try model(.standard).forward(tokens: tokens, batch: 2, length: 150)
        let efficient = try model(.memoryEfficient).forward(tokens: tokens, batch: 2, length: 150)
        assertClose(efficient, widened(standard), absolute: 1e-5, relative: 1e-4, "logits, memory-efficient vs standard")
    }

    func testGradientsAgreeBetweenKernels() throws {
        let (batch, length) = (2, 131)
        let ids = ModelFactory.tokens(batch * (length + 1), vocab: 37, seed: 33)
        var inputs: [Int32] = [], targets: [Int32] = []
        for b in 0..<batch {
            inputs += ids[(b * (length + 1))..<(b * (length + 1) + length)]
            targets += ids[(b * (length + 1) + 1)..<((b + 1) * (length + 1))]
        }
        var results: [(loss: Double, gradients: [Float])] = []
        for kernel in [AttentionKernel.standard, .memoryEfficient] {
            let session = try TrainingSession(model: try model(kernel), batch: batch, length: length)
            XCTAssertEqual(session.attentionKernel, kernel)
            let loss = try session.computeGradients(inputs: inputs, targets: targets)
            results.append((loss, session.gradients.array))
        }
        XCTAssertEqual(results[0].loss, results[1].loss, accuracy: 1e-5)
        assertClose(results[1].gradients, widened(results[0].gradients), absolute: 1e-6, relative: 1e-3, "gradients, memory-efficient vs standard")
    }

    /// Prefill in chunks through the KV cache with the memory-efficient kernel, then cached
    /// steps (standard, one row): the logits of a full forward.
    func testCachedPrefillAgreesWithFullForward() throws {
        let model = try model(.memoryEfficient)
        let tokens = ModelFactory.tokens(150, vocab: 37, seed: 34)
        let full = try model.forward(tokens: tokens, batch: 1, length: 150)
        let session = InferenceSession(model: model, maxChunk: 70)
        XCTAssertEqual(session.attentionKernel, .memoryEfficient)
        var cached = try session.append(Array(tokens.prefix(147)), allLogits: true)
        for token in tokens.suffix(3) { cached += Array(try session.step(token)) }
        assertClose(cached, widened(full), absolute: 1e-5, relative: 1e-4, "chunked prefill + steps vs full forward")
    }

    /// Heads the hand-vectorised tiles take get the memory-efficient kernel from 1,024 tokens; the
    /// others from 2,048, or when the probabilities would not fit.
    func testRulePicksTheMemoryEfficientKernelWhereItIsFaster() throws {
        let automatic = AttentionChoice.automatic
        let tiled = ModelConfig(vocabSize: 100, contextLength: 8192, dModel: 128, numLayers: 2, numHeads: 4, dFF: 96, ropeTheta: 10_000)
        let from = FlashAttention.runsHandKernels(headDim: 32) ? AttentionChoice.handTiledContext : AttentionChoice.longContext
        XCTAssertEqual(automatic.kernel(config: tiled, batch: 8, length: 256, training: true), .standard)
        XCTAssertEqual(automatic.kernel(config: tiled, batch: 1, length: from - 1, training: false), .standard)
        XCTAssertEqual(automatic.kernel(config: tiled, batch: 1, length: from, training: true), .memoryEfficient)
        // Head size 8: no hand-vectorised tiles, so the GEMM tiles' rule.
        let config = ModelConfig(vocabSize: 100, contextLength: 8192, dModel: 32, numLayers: 2, numHeads: 4, dFF: 96, ropeTheta: 10_000)
        XCTAssertEqual(automatic.kernel(config: config, batch: 8, length: 256, training: true), .standard)
        XCTAssertEqual(automatic.kernel(config: config, batch: 1, length: AttentionChoice.longContext - 1, training: false), .standard)
        XCTAssertEqual(automatic.kernel(config: config, batch: 1, length: AttentionChoice.longContext, training: false), .memoryEfficient)
        // Probabilities beyond a quarter of memory: 4 heads × 1024² × 4 B × 3 slots per sequence.
        let huge = Int(ProcessInfo.processInfo.physicalMemory / UInt64(4 * 1024 * 1024 * 4 * 3 * 3)) + 1
        XCTAssertEqual(automatic.kernel(config: config, batch: huge, length: 1024, training: true), .memoryEfficient)
        XCTAssertEqual(AttentionChoice.forced(.standard).kernel(config: config, batch: 1, length: 8192, training: true), .standard)
        XCTAssertEqual(AttentionChoice("memory-efficient"), .forced(.memoryEfficient))
        XCTAssertEqual(AttentionChoice("automatic"), .automatic)
        XCTAssertNil(AttentionChoice("flash"))
    }
}
