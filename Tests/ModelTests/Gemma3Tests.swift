import Foundation
import Kernels
import Model
import TensorIO
import TestSupport
import XCTest

/// The real Gemma 3 270M (GGUF Q4_K_M, fetched by `scripts/fetch-models.sh`) against transformers
/// on the same dequantized weights (`../shared/data/gemma3`): every position of a short prompt,
/// the last of one longer than the 512-token sliding window, greedy continuations.
final class Gemma3Tests: XCTestCase {
    /// The logits' tolerance: 1e-4 of the largest logit magnitude.
    static func bound(_ expected: [Float]) -> Float { 1e-4 * expected.map(abs).max()! }

    /// The file dequantized to Float32, loaded once for every test that reads it (a debug build
    /// takes a while to decode 268M values).
    nonisolated(unsafe) private static var loaded: TransformerLM?
    static func dequantized() throws -> TransformerLM {
        if let loaded { return loaded }
        let model = try GGUFCheckpoint.load(path: try Fixtures.requireGemma3())
        loaded = model
        return model
    }

    func testDequantizedLogitsEqualTransformersAtOneAndTwoThreads() throws {
        let fixture = try Fixtures.requireSharedData("gemma3")
        let model = try Self.dequantized()
        let config = model.config
        XCTAssertEqual([config.numLayers, config.dModel, config.numHeads, config.numKVHeads, config.headDim, config.dFF, config.vocabSize],
                       [18, 640, 4, 1, 256, 2_048, 262_144])
        XCTAssertEqual((0..<18).filter { config.architecture.slides(layer: $0) }.count, 15)
        let threads = Threading.count
        defer { Threading.count = threads }
        for count in [1, 2] {
            Threading.count = count
            let (_, expected, worst) = try ModelFactory.logitGap(model, ids: fixture + "/plain_ids.npy", logits: fixture + "/plain_logits.npy",
                                                              label: "Gemma 3 plain, \(count) thread(s)")
            XCTAssertLessThan(worst, Self.bound(expected), "plain, every position, \(count) thread(s)")
            let ids = try NPYFile(path: fixture + "/window_ids.npy").integers().map { Int32($0) }
            let logits = try model.forward(tokens: ids, batch: 1, length: ids.count)
            let last = Array(logits[((ids.count - 1) * config.vocabSize)...])
            let reference = try NPYFile(path: fixture + "/window_logits.npy").floats()
            let gap = zip(last, reference).map { abs($0 - $1) }.max()!
            print("Gemma 3 window (\(ids.count) tokens), \(count) thread(s): max |Δ| of the last logits against transformers \(gap)")
            XCTAssertLessThan(gap, Self.bound(reference), "window prompt, last position, \(count) thread(s)")
        }
    }

    /// With the blocks kept (Q8_0, Q5_0, Q4_K, Q6_K), greedy decoding through the KV cache gives
    /// transformers' continuations, past the sliding window too.
    func testGreedyContinuationsWithBlocksKeptEqualTransformers() throws {
        let fixture = try Fixtures.requireSharedData("gemma3")
        let model = try GGUFCheckpoint.load(file: try GGUFFile(path: try Fixtures.requireGemma3()), keepQuantized: true)
        XCTAssertEqual(model.quantizedTensors.count, 18 * 7 + 1, "every projection and the embedding (the tied head is the same matrix)")
        let (_, expected, worst) = try ModelFactory.logitGap(model, ids: fixture + "/plain_ids.npy", logits: fixture + "/plain_logits.npy",
                                                          label: "Gemma 3 with blocks kept")
        XCTAssertLessThan(worst, Self.bound(expected))
        for name in ["plain", "window"] {
            let prompt = try NPYFile(path: fixture + "/\(name)_ids.npy").integers().map { Int32($0) }
            let session = InferenceSession(model: model)
            // 3 global layers at 32,768 rows, 15 sliding ones at 511 + 256 (rewind margin) + 256 (chunk) rows.
            XCTAssertEqual(session.cacheBytes, (3 * 32_768 + 15 * 1_023) * 256 * 8)
            XCTAssertEqual(try SmolLM2Tests.greedy(24, after: prompt, in: session),
                           try NPYFile(path: fixture + "/\(name)_greedy24.npy").integers().map { Int32($0) }, "\(name): greedy continuation")
        }
    }
}
