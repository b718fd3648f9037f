import Foundation
import Kernels
import Model
import TensorIO
import TestSupport
import XCTest

/// A real llama.cpp file through our model: the two-layer SmolLM2 cut quantized to Q4_K_M
/// (Q8_0, Q5_0, Q4_K, Q6_K), dequantized on load, against transformers on the same weights.
final class GGUFCheckpointTests: XCTestCase {
    func testTheQ4KMFixtureGivesTransformersLogits() throws {
        let directory = try Fixtures.requireSharedData("smollm2-q4km")
        let model = try GGUFCheckpoint.load(path: directory + "/smollm2-2layer-q4_k_m.gguf")
        let config = model.config
        XCTAssertEqual([config.vocabSize, config.dModel, config.numLayers, config.numHeads, config.numKVHeads, config.dFF, config.contextLength],
                       [49_152, 576, 2, 9, 3, 1_536, 8_192])
        XCTAssertEqual(config.ropeTheta, 100_000)
        XCTAssertEqual(config.normEps, 1e-5)
        // The head is tied: a copy of the embedding.
        XCTAssertEqual(Array(model.tensor("lm_head.weight")!.prefix(1000)), Array(model.tensor("token_embeddings.weight")!.prefix(1000)))
        let ids = try NPYFile(path: directory + "/ids.npy").integers().map { Int32($0) }
        let expected = try NPYFile(path: directory + "/logits.npy").floats()
        let logits = try model.forward(tokens: ids, batch: 1, length: ids.count)
        XCTAssertEqual(logits.count, expected.count)
        let worst = zip(logits, expected).map { abs($0 - $1) }.max()!
        print("GGUF Q4_K_M fixture: max |Δ| of the logits against transformers \(worst)")
        XCTAssertLessThan(worst, 1e-4, "max |Δ| against transformers: \(worst)")
        // And the cached path gives the same last-position logits.
        let session = InferenceSession(model: model, maxChunk: 5)
        let last = try session.append(ids)
        let tail = Array(expected[((ids.count - 1) * config.vocabSize)...])
        XCTAssertLessThan(zip(last, tail).map { abs($0 - $1) }.max()!, 1e-4)
    }
}
