import Foundation
import Model
import TensorIO
import TestSupport
import XCTest

/// Files of families or features this engine does not run, and tensors that do not fit the
/// stated family: an error naming the key, field or tensor, before anything is computed.
final class FamilyInputTests: TemporaryDirectoryTestCase {
    /// A GGUF file with `metadata` keys and one 4 × 8 Float32 embedding.
    func gguf(_ name: String, _ metadata: (inout GGUFWriter) -> Void) throws -> String {
        var writer = GGUFWriter()
        metadata(&writer)
        try writer.add(.init(name: "token_embd.weight", shape: [4, 8], type: .f32, bytes: [UInt8](repeating: 0, count: 4 * 32)))
        let path = directory + "/" + name
        try writer.write(to: path)
        return path
    }

    func assertRefused(_ load: @autoclosure () throws -> Any, mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(), file: file, line: line) { error in
            for word in words { XCTAssertTrue("\(error)".contains(word), "'\(word)' not in: \(error)", file: file, line: line) }
        }
    }

    func testAnArchitectureWeDoNotRunIsNamed() throws {
        let path = try gguf("phi3.gguf") { $0.set("general.architecture", string: "phi3") }
        assertRefused(try GGUFCheckpoint.load(path: path), mentions: ["general.architecture", "'phi3'", "gemma3"])
    }

    func testGGUFFeaturesWeDoNotImplementAreNamed() throws {
        func gemma(_ extra: @escaping (inout GGUFWriter) -> Void) -> (inout GGUFWriter) -> Void {
            { writer in
                writer.set("general.architecture", string: "gemma3")
                for (key, value) in [("context_length", 64), ("embedding_length", 8), ("block_count", 1), ("feed_forward_length", 16),
                                     ("attention.head_count", 2), ("attention.head_count_kv", 1), ("attention.key_length", 4),
                                     ("attention.sliding_window", 16)] {
                    writer.set("gemma3." + key, u32: UInt32(value))
                }
                extra(&writer)
            }
        }
        let capped = try gguf("capped.gguf", gemma { $0.set("gemma3.attn_logit_softcapping", f32: 50) })
        assertRefused(try GGUFCheckpoint.load(path: capped), mentions: ["gemma3.attn_logit_softcapping"])
        let yarn = try gguf("yarn.gguf", gemma { $0.set("gemma3.rope.scaling.type", string: "yarn") })
        assertRefused(try GGUFCheckpoint.load(path: yarn), mentions: ["gemma3.rope.scaling.type", "yarn"])
        let twoSizes = try gguf("two.gguf", gemma { $0.set("gemma3.attention.value_length", u32: 8) })
        assertRefused(try GGUFCheckpoint.load(path: twoSizes), mentions: ["gemma3.attention.key_length", "value_length"])
        // A gemma3 file with nothing but its embedding: the first missing tensor is named.
        let bare = try gguf("bare.gguf", gemma { _ in })
        assertRefused(try GGUFCheckpoint.load(path: bare), mentions: ["missing", "layers.0"])
    }

    /// A copy of a Hugging Face fixture directory with its config changed by `edit`.
    func huggingFace(_ fixture: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
        let source = try Fixtures.requireSharedData(fixture)
        let target = directory + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: source) where name != "config.json" {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: target + "/" + name)
        }
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source + "/config.json"))) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: target + "/config.json"))
        return target
    }

    func testHuggingFaceConfigsWeDoNotRunAreNamed() throws {
        let mistral = try huggingFace("qwen3-tiny") { $0["architectures"] = ["MistralForCausalLM"]; $0["model_type"] = "mistral" }
        assertRefused(try HuggingFaceCheckpoint.load(directory: mistral), mentions: ["'architectures'", "MistralForCausalLM", "Gemma3ForCausalLM"])
        let sliding = try huggingFace("qwen3-tiny") { $0["use_sliding_window"] = true }
        assertRefused(try HuggingFaceCheckpoint.load(directory: sliding), mentions: ["use_sliding_window"])
        let yarn = try huggingFace("qwen2-tiny") { $0["rope_parameters"] = ["rope_type": "yarn", "rope_theta": 1e6, "factor": 4] }
        assertRefused(try HuggingFaceCheckpoint.load(directory: yarn), mentions: ["rope_parameters.rope_type", "yarn"])
        let gelu = try huggingFace("qwen3-tiny") { $0["hidden_act"] = "gelu" }
        assertRefused(try HuggingFaceCheckpoint.load(directory: gelu), mentions: ["hidden_act", "gelu"])
        let gemma = try huggingFace("qwen3-tiny") {
            $0["architectures"] = ["Gemma3ForCausalLM"]; $0["model_type"] = "gemma3_text"; $0["hidden_act"] = nil; $0["attn_logit_softcapping"] = 50.0
        }
        assertRefused(try HuggingFaceCheckpoint.load(directory: gemma), mentions: ["attn_logit_softcapping"])
        let layers = try huggingFace("qwen3-tiny") {
            $0["architectures"] = ["Gemma3ForCausalLM"]; $0["model_type"] = "gemma3_text"; $0["hidden_act"] = nil; $0["sliding_window"] = 4
            $0["layer_types"] = ["sliding_attention", "full_attention", "full_attention"]
        }
        assertRefused(try HuggingFaceCheckpoint.load(directory: layers), mentions: ["layer_types", "3 layers"])
    }

    /// Found by the fuzzer: a negative layer count reached Gemma 3's layer-type pattern as a
    /// backwards range and trapped. Every size is refused below 1, naming its key.
    func testSizesBelowOneAreNamedBeforeAnythingIsBuilt() throws {
        for (key, value) in [("num_hidden_layers", -1), ("num_attention_heads", 0), ("hidden_size", -640), ("vocab_size", 0)] {
            var config: [String: Any] = ["architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "vocab_size": 16,
                                         "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16,
                                         "sliding_window": 4]
            config[key] = value
            let target = directory + "/" + key
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: target + "/config.json"))
            assertRefused(try HuggingFaceCheckpoint.config(directory: target), mentions: [key, "\(value)", "positive integer"])
        }
    }

    func testTensorsOfTheWrongShapeOrMissingForTheFamilyAreNamed() throws {
        // Qwen 3's stated head size makes q_proj [128, 64]; stated otherwise, the tensor is named.
        let narrow = try huggingFace("qwen3-tiny") { $0["head_dim"] = 16 }
        assertRefused(try HuggingFaceCheckpoint.load(directory: narrow), mentions: ["model.layers.0.self_attn", "shape"])
        // Read as Qwen 2, the file lacks the biases (and has QK-norm gains Qwen 2 has no place for).
        let asQwen2 = try huggingFace("qwen3-tiny") { $0["architectures"] = ["Qwen2ForCausalLM"]; $0["model_type"] = "qwen2" }
        assertRefused(try HuggingFaceCheckpoint.load(directory: asQwen2), mentions: ["_norm.weight", "no place in a qwen2 model"])
    }
}
