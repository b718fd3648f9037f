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
        let (ids, expected, worst) = try ModelFactory.logitGap(model, ids: directory + "/ids.npy", logits: directory + "/logits.npy", label: "GGUF Q4_K_M fixture")
        XCTAssertLessThan(worst, 1e-4, "max |Δ| against transformers: \(worst)")
        // And the cached path gives the same last-position logits.
        let session = InferenceSession(model: model, maxChunk: 5)
        let last = try session.append(ids)
        let tail = Array(expected[((ids.count - 1) * config.vocabSize)...])
        XCTAssertLessThan(zip(last, tail).map { abs($0 - $1) }.max()!, 1e-4)
    }

    /// The same file with its Q8_0 tensors kept in their blocks (the embedding and the tied head,
    /// and some projections, beside Float32 parts decoded from Q5_0, Q4_K and Q6_K: stacked q/k/v
    /// and gate/up groups of mixed formats), through the batched path and the cached decode path.
    func testTheQ4KMFixtureWithBlocksKeptGivesTheSameLogits() throws {
        let directory = try Fixtures.requireSharedData("smollm2-q4km")
        let file = try GGUFFile(path: directory + "/smollm2-2layer-q4_k_m.gguf")
        let model = try GGUFCheckpoint.load(file: file, keepQuantized: true)
        XCTAssertTrue(model.isQuantized)
        XCTAssertNotNil(model.quantizedTensors["token_embeddings.weight"])
        XCTAssertTrue(model.quantizedTensors["lm_head.weight"] === model.quantizedTensors["token_embeddings.weight"], "a tied head is the embedding's matrix")
        // Every matrix of every type in the file stays in its blocks: Q8_0, Q5_0, Q4_K, Q6_K.
        let kept = Dictionary(model.quantizedTensors.map { ($0.key, $0.value.format) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(kept["layers.0.ffn.w2.weight"], .q4_K)
        XCTAssertEqual(kept["layers.1.ffn.w2.weight"], .q6_K)
        XCTAssertEqual(kept["layers.0.attn.q_proj.weight"], .q5_0)
        XCTAssertEqual(kept["layers.1.attn.v_proj.weight"], .q8_0)
        XCTAssertEqual(model.quantizedTensors.count, 1 + 1 + 2 * 7, "embedding, tied head, seven matrices a layer")
        let (ids, expected, worst) = try ModelFactory.logitGap(model, ids: directory + "/ids.npy", logits: directory + "/logits.npy",
                                                              label: "GGUF Q4_K_M fixture, blocks kept")
        XCTAssertLessThan(worst, 1e-4)
        let session = InferenceSession(model: model)
        var last = try session.append(Array(ids.dropLast()))
        last = Array(try session.step(ids.last!))
        XCTAssertLessThan(zip(last, expected[((ids.count - 1) * model.config.vocabSize)...]).map { abs($0 - $1) }.max()!, 1e-4, "decode step")
        // Neither trains nor saves, and says why.
        XCTAssertThrowsError(try TrainingSession(model: model, batch: 1, length: 4)) { XCTAssertTrue("\($0)".contains("quantized"), "\($0)") }
        XCTAssertThrowsError(try Checkpoint.save(model, directory: NSTemporaryDirectory() + "/never")) { XCTAssertTrue("\($0)".contains("quantized"), "\($0)") }
    }
}
