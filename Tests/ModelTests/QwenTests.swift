import Foundation
import Kernels
import Model
import TensorIO
import TestSupport
import XCTest

/// Tiny random Qwen 3 (QK-norm, stated head size, tied head; Hugging Face and GGUF) and Qwen 2
/// (q/k/v biases, bf16, untied) checkpoints saved by transformers, against transformers' logits
/// at every position of three texts (`../shared/data/qwen3-tiny`, `qwen2-tiny`).
final class QwenTests: XCTestCase {
    /// Every fixture text's logits from `model` against transformers', within 1e-4 of the largest
    /// logit magnitude, at one and two threads.
    static func compare(_ model: TransformerLM, fixture: String, label: String) throws {
        let threads = Threading.count
        defer { Threading.count = threads }
        for text in 0..<3 {
            for count in [1, 2] {
                Threading.count = count
                let (_, expected, worst) = try ModelFactory.logitGap(model, ids: fixture + "/expected_ids_\(text).npy",
                                                                  logits: fixture + "/expected_logits_\(text).npy",
                                                                  label: "\(label) text \(text), \(count) thread(s)")
                XCTAssertLessThan(worst, 1e-4 * expected.map(abs).max()!, "\(label) text \(text), \(count) thread(s)")
            }
        }
    }

    func testQwen3HuggingFaceDirectoryEqualsTransformers() throws {
        let fixture = try Fixtures.requireSharedData("qwen3-tiny")
        let model = try HuggingFaceCheckpoint.load(directory: fixture)
        let architecture = model.config.architecture
        XCTAssertEqual(architecture.family, "qwen3")
        XCTAssertTrue(architecture.qkNorm && architecture.tiedEmbeddings && architecture.ropeStyle == .halves)
        XCTAssertEqual(model.config.headDim, 32, "stated, not hidden / heads = 16")
        XCTAssertNil(model.layout.entry("lm_head.weight"), "a tied head is the embedding itself")
        try Self.compare(model, fixture: fixture, label: "Qwen 3 (Hugging Face)")
    }

    func testQwen3GGUFEqualsTransformers() throws {
        let fixture = try Fixtures.requireSharedData("qwen3-tiny")
        let model = try GGUFCheckpoint.load(path: fixture + "/model-f32.gguf")
        XCTAssertEqual(model.config.architecture.family, "qwen3")
        try Self.compare(model, fixture: fixture, label: "Qwen 3 (GGUF)")
    }

    /// The bf16 checkpoint: transformers loads it in bf16, and its RoPE frequencies (`inv_freq`,
    /// a buffer cast with the weights) are rounded to bf16 too, which moves these logits by up to
    /// 9e-4 (a float64 re-computation with float frequencies differs from transformers' by that
    /// much, and by 1.3e-6 with the frequencies rounded). The comparison reproduces that rounding
    /// with ``ModelConfig/ropeFrequencyFactors``; the loader itself keeps exact frequencies.
    func testQwen2HuggingFaceDirectoryEqualsTransformers() throws {
        let fixture = try Fixtures.requireSharedData("qwen2-tiny")
        let loaded = try HuggingFaceCheckpoint.load(directory: fixture)
        let architecture = loaded.config.architecture
        XCTAssertEqual(architecture.family, "qwen2")
        XCTAssertTrue(architecture.qkvBias && !architecture.tiedEmbeddings && !architecture.qkNorm)
        XCTAssertNotNil(loaded.layout.entry("layers.1.attn.v_proj.bias"))
        var config = loaded.config
        let (d, theta) = (config.headDim, config.ropeTheta)
        config.ropeFrequencyFactors = (0..<(d / 2)).map { pair in
            let exact = 1 / Foundation.pow(theta, Double(2 * pair) / Double(d))
            let single = Float(1 / Foundation.pow(Float(theta), Float(2 * pair) / Float(d)))
            let bits = single.bitPattern
            let rounded = Float(bitPattern: ((bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16) << 16)  // to bf16, ties to even
            return exact / Double(rounded)
        }
        let model = try TransformerLM(config: config, parameters: loaded.parameters)
        try Self.compare(model, fixture: fixture, label: "Qwen 2 (Hugging Face, bf16 RoPE frequencies as transformers rounds them)")
    }
}
