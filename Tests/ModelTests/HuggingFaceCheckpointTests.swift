import Foundation
import Kernels
import Model
import TensorIO
import TestSupport
import Verification
import XCTest

/// Hugging Face directories: the tiny sharded bf16 Llama of `../shared/data/hf-llama-tiny`
/// against transformers, and the RoPE row permutation against rotate-half RoPE directly.
final class HuggingFaceCheckpointTests: TemporaryDirectoryTestCase {
    func testTinyShardedLlamaLogitsEqualTransformers() throws {
        let fixture = try Fixtures.requireSharedData("hf-llama-tiny")
        XCTAssertTrue(HuggingFaceCheckpoint.isHuggingFaceDirectory(fixture))
        let model = try Checkpoint.load(modelAt: fixture)
        XCTAssertEqual([model.config.numLayers, model.config.dModel, model.config.numHeads, model.config.numKVHeads, model.config.dFF],
                       [2, 64, 4, 2, 172])
        XCTAssertEqual(model.config.ropeTheta, 100_000)
        let ids = try NPYFile(path: fixture + "/expected_ids.npy").integers().map { Int32($0) }
        let expected = try NPYFile(path: fixture + "/expected_logits.npy").floats()
        let logits = try model.forward(tokens: ids, batch: 1, length: ids.count)
        XCTAssertEqual(logits.count, expected.count)
        let worst = zip(logits, expected).map { abs($0 - $1) }.max()!
        print("hf-llama-tiny: max |Δ| of the logits against transformers \(worst)")
        // The fixture's gap grows with the position (1e-6 at 0, 2.4e-4 at 32): transformers ran
        // the bf16 checkpoint with its RoPE inverse frequencies cast to bf16 along with the model.
        // A float64 NumPy model of the same weights is 2.44e-4 from the fixture with exact
        // frequencies and 1.2e-6 with bf16-rounded ones; ours keeps the exact frequencies.
        XCTAssertLessThan(worst, 3e-4)
        // The same weights through the plain-loop reference in Double: our kernels to 1e-5.
        let reference = ReferenceModel.logits(model, tokens: ids, batch: 1, length: ids.count)
        let kernelGap = zip(logits, reference).map { abs(Double($0) - $1) }.max()!
        print("hf-llama-tiny: max |Δ| against the Double reference \(kernelGap)")
        XCTAssertLessThan(kernelGap, 1e-5)
    }

    /// Rotating halves (transformers) of a vector equals rotating interleaved pairs (ours) of the
    /// permuted vector, at every position: the reason the q/k rows are permuted on load.
    func testRowPermutationTurnsRotateHalfIntoInterleavedPairs() {
        let headSize = 8, heads = 2, theta = 10_000.0
        var generator = SeededGenerator(seed: 5)
        let vector = (0..<(headSize * heads)).map { _ in Float.random(in: -1...1, using: &generator) }
        for position in [0, 1, 7, 100] {
            var halves = vector, pairs = [Float](repeating: 0, count: vector.count)
            for row in vector.indices { pairs[HuggingFaceCheckpoint.interleavedRow(row, headSize: headSize)] = vector[row] }
            let half = headSize / 2
            for head in 0..<heads {
                for i in 0..<half {
                    let angle = Double(position) * pow(theta, -2 * Double(i) / Double(headSize))
                    let (c, s) = (Float(cos(angle)), Float(sin(angle)))
                    let a = head * headSize + i, b = a + half
                    (halves[a], halves[b]) = (vector[a] * c - vector[b] * s, vector[b] * c + vector[a] * s)
                    let x = head * headSize + 2 * i
                    (pairs[x], pairs[x + 1]) = (pairs[x] * c - pairs[x + 1] * s, pairs[x + 1] * c + pairs[x] * s)
                }
            }
            for row in vector.indices {
                XCTAssertEqual(pairs[HuggingFaceCheckpoint.interleavedRow(row, headSize: headSize)], halves[row], accuracy: 1e-6)
            }
        }
        // A permutation: every target row used once.
        XCTAssertEqual(Set((0..<16).map { HuggingFaceCheckpoint.interleavedRow($0, headSize: headSize) }).count, 16)
    }

    /// Llama 3.1/3.2's `rope_type: llama3` as divisors of the RoPE frequencies, against
    /// transformers' formula evaluated in NumPy for this configuration (one pair kept, one in
    /// the smooth band, six divided by the factor).
    func testLlama3RoPEScalingGivesTransformersFrequencies() throws {
        let fixture = try Fixtures.requireSharedData("hf-llama-tiny")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture + "/config.json"))) as! [String: Any]
        config["rope_parameters"] = ["rope_type": "llama3", "rope_theta": 500_000.0, "factor": 32.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/config.json"))
        let loaded = try HuggingFaceCheckpoint.config(directory: directory)
        let expected = [1.0, 2.888633554183611, 32, 32, 32, 32, 32, 32]
        let factors = try XCTUnwrap(loaded.ropeFrequencyFactors)
        XCTAssertEqual(factors.count, expected.count)
        for (actual, wanted) in zip(factors, expected) { XCTAssertEqual(actual, wanted, accuracy: 1e-12) }
        // The table divides each pair's frequency by its factor.
        let table = RoPETable(headDim: 16, maxPositions: 100, theta: 500_000, frequencyFactors: factors)
        let angle = 99 / (pow(500_000, 2.0 / 16) * factors[1])
        XCTAssertEqual(table.cos[99 * 8 + 1], Float(cos(angle)), accuracy: 1e-6)
        XCTAssertEqual(table.sin[99 * 8 + 1], Float(sin(angle)), accuracy: 1e-6)
        // Saved in our config.json and read back.
        try loaded.save(path: directory + "/ours.json")
        XCTAssertEqual(try ModelConfig.load(path: directory + "/ours.json"), loaded)
    }

    func testRefusesWhatItDoesNotImplementNamingTheField() throws {
        let fixture = try Fixtures.requireSharedData("hf-llama-tiny")
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture + "/config.json"))) as! [String: Any]
        let cases: [(String, Any, String)] = [
            ("attention_bias", true, "attention_bias"),
            ("rope_scaling", ["rope_type": "yarn", "factor": 8.0], "rope_scaling.rope_type"),
            ("rope_scaling", ["rope_type": "llama3", "factor": 8.0], "rope_scaling.low_freq_factor"),
            ("architectures", ["GPT2LMHeadModel"], "architectures"),
            ("hidden_act", "gelu", "hidden_act"),
            ("num_hidden_layers", "two", "num_hidden_layers"),
        ]
        for (key, value, named) in cases {
            var config = original
            config[key] = value
            let folder = (directory as NSString).appendingPathComponent(key)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: folder + "/config.json"))
            XCTAssertThrowsError(try HuggingFaceCheckpoint.config(directory: folder), key) { error in
                XCTAssertTrue("\(error)".contains(named), "\(error)")
            }
        }
    }

    func testShardIndexMustStayInsideTheDirectoryAndBeComplete() throws {
        let fixture = try Fixtures.requireSharedData("hf-llama-tiny")
        let folder: String = directory
        for name in ["config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"] {
            try FileManager.default.copyItem(atPath: fixture + "/" + name, toPath: folder + "/" + name)
        }
        let index = try String(contentsOfFile: fixture + "/model.safetensors.index.json", encoding: .utf8)
        for (broken, message) in [(index.replacingOccurrences(of: "\"model-00002-of-00003.safetensors\"", with: "\"../model-00002-of-00003.safetensors\""), "not a file name inside"),
                                  (index.replacingOccurrences(of: "weight_map", with: "weights"), "weight_map"),
                                  (String(index.prefix(index.count / 2)), "index.json")] {
            try broken.write(toFile: folder + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try Checkpoint.load(modelAt: folder)) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        // A shard holding a tensor the index maps elsewhere.
        try index.replacingOccurrences(of: "\"lm_head.weight\": \"model-00002-of-00003.safetensors\"", with: "\"lm_head.weight\": \"model-00001-of-00003.safetensors\"")
            .write(toFile: folder + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Checkpoint.load(modelAt: folder))
    }
}
