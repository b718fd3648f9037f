import Foundation
@testable import Model
import TensorIO
import TestSupport
import XCTest

/// A tiny model of each family written out as transformers lays its checkpoint out (its tensor
/// names, Gemma's norm gains as `w` of `x·(1 + w)`, q and k rows in rotate-half order, its
/// `config.json` keys) loads back as the same model: the Hugging Face side of each family's name
/// map, gain offset and RoPE order, without a downloaded checkpoint.
final class FamilyHuggingFaceLayoutTests: TemporaryDirectoryTestCase {
    /// Transformers' name for each of ours in `family`.
    static func huggingFaceName(_ name: String, family: ModelFamily) -> String {
        let whole = ["token_embeddings.weight": "model.embed_tokens.weight", "ln_final.weight": "model.norm.weight", "lm_head.weight": "lm_head.weight"]
        if let mapped = whole[name] { return mapped }
        let parts = name.split(separator: ".", maxSplits: 2)
        let inverse = Dictionary(uniqueKeysWithValues: HuggingFaceCheckpoint.layerNames.map { ($1, $0) }
                                 + family.huggingFaceNorms.map { ($1, $0) })
        return "model.layers.\(parts[1]).\(inverse[String(parts[2])]!)"
    }

    func write(_ model: TransformerLM, family: ModelFamily, config json: [String: Any], to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let architecture = model.config.architecture
        let tensors = model.layout.entries.map { entry -> NamedTensor in
            var values = Array(model.tensor(entry.name)!)
            if entry.role == .gain { values = values.map { $0 - architecture.huggingFaceGainOffset } }
            if architecture.ropeStyle == .interleaved, entry.name.hasSuffix("q_proj.weight") || entry.name.hasSuffix("k_proj.weight") {
                // Back to rotate-half order: our row interleavedRow(r) holds transformers' row r.
                let (rows, columns) = (entry.shape[0], entry.shape[1])
                var original = values
                for row in 0..<rows {
                    let ours = HuggingFaceCheckpoint.interleavedRow(row, headSize: model.config.headDim)
                    original.replaceSubrange((row * columns)..<((row + 1) * columns), with: values[(ours * columns)..<((ours + 1) * columns)])
                }
                values = original
            }
            return NamedTensor(name: Self.huggingFaceName(entry.name, family: family), shape: entry.shape, values: values)
        }
        try SafeTensorsWriter.write(tensors, to: directory + "/model.safetensors")
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: directory + "/config.json"))
    }

    func testEachFamilyLoadsBackFromTransformersLayout() throws {
        let base: [String: Any] = ["hidden_size": 16, "intermediate_size": 20, "num_hidden_layers": 3, "num_attention_heads": 4,
                                   "vocab_size": 29, "max_position_embeddings": 12, "rms_norm_eps": 1e-6]
        let configs: [(String, ModelFamily, [String: Any])] = [
            ("qwen2", .qwen2, ["architectures": ["Qwen2ForCausalLM"], "num_key_value_heads": 2, "rope_theta": 1000.0, "tie_word_embeddings": false]),
            ("qwen3", .qwen3, ["architectures": ["Qwen3ForCausalLM"], "num_key_value_heads": 2, "head_dim": 6, "tie_word_embeddings": true,
                               "rope_parameters": ["rope_type": "default", "rope_theta": 1000.0]]),
            ("gemma3", .gemma3, ["architectures": ["Gemma3ForCausalLM"], "num_key_value_heads": 1, "head_dim": 8, "sliding_window": 3,
                                 "layer_types": ["sliding_attention", "sliding_attention", "full_attention"], "query_pre_attn_scalar": 11,
                                 "hidden_activation": "gelu_pytorch_tanh",
                                 "rope_parameters": ["full_attention": ["rope_type": "linear", "factor": 2.0, "rope_theta": 1000.0],
                                                     "sliding_attention": ["rope_type": "default", "rope_theta": 50.0]]]),
        ]
        for (name, family, fields) in configs {
            let json = base.merging(fields) { $1 }
            // The configuration the family reads from these fields, a model of it with random gains and biases.
            let path = directory + "/\(name)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path + "/config.json"))
            let config = try HuggingFaceCheckpoint.config(directory: path)
            XCTAssertEqual(config.architecture.family, name)
            let original = try TransformerLM(config: config, parameters: try ArchitectureTests.model(name, seed: 30, config: config).parameters)
            try write(original, family: family, config: json, to: path)
            let loaded = try HuggingFaceCheckpoint.load(directory: path)
            XCTAssertEqual(loaded.config, original.config, name)
            XCTAssertEqual(loaded.parameters.array, original.parameters.array, "\(name): every tensor back in place")
            if name == "gemma3" {
                XCTAssertEqual(config.architecture.attentionScale, Float(1 / 11.0.squareRoot()))
                XCTAssertEqual(config.architecture.globalRopeScale, 2)
                XCTAssertEqual(config.architecture.localRopeTheta, 50)
                XCTAssertEqual(config.architecture.slidingLayers, [true, true, false])
            }
        }
    }
}
