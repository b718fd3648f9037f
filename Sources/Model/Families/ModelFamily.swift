import Foundation
import TensorIO

/// A model family as the loaders meet it: its names in GGUF and Hugging Face files and how its
/// configuration reads into a ``ModelConfig`` (whose ``Architecture`` then decides the layout,
/// the forward, the backward and the cache). Adding a family is one file that states one of
/// these, plus a line in ``all``.
public struct ModelFamily: Sendable {
    /// `general.architecture` in GGUF, and ``Architecture/family``.
    public let name: String
    /// Hugging Face `architectures` entries.
    public let huggingFaceArchitectures: [String]
    /// Hugging Face `model_type` values (for a config without `architectures`).
    public let huggingFaceModelTypes: [String]
    /// The configuration from a GGUF file's `<name>.*` keys; `vocabulary` is the embedding's
    /// rows (for files without a vocabulary-size key) and `tiedHead` whether the file has no
    /// `output.weight`.
    let ggufConfig: @Sendable (_ fields: ConfigFields, _ file: GGUFFile, _ vocabulary: Int, _ tiedHead: Bool) throws -> ModelConfig
    /// The configuration from a Hugging Face `config.json`, and whether the head is tied.
    let huggingFaceConfig: @Sendable (_ fields: ConfigFields) throws -> (ModelConfig, tiedHead: Bool)
    /// Transformers' per-layer norm names (after `model.layers.N.`), ours for each: the names
    /// that differ between families (Gemma's `post_attention_layernorm` is a post-norm, Llama's
    /// the norm before the feed-forward network).
    let huggingFaceNorms: [String: String]

    /// Every family this engine runs.
    public static let all: [ModelFamily] = [.llama, .qwen2, .qwen3, .gemma3]

    /// The family called `name` (GGUF `general.architecture`).
    public static func named(_ name: String) -> ModelFamily? { all.first { $0.name == name } }

    /// The family of a Hugging Face config's `architectures` (else its `model_type`).
    static func huggingFace(architectures: [String], modelType: String?) -> ModelFamily? {
        if let match = all.first(where: { family in architectures.contains { family.huggingFaceArchitectures.contains($0) } }) { return match }
        guard architectures.isEmpty, let modelType else { return nil }
        return all.first { $0.huggingFaceModelTypes.contains(modelType) }
    }

    /// What the error messages list.
    static var namesForMessages: String { all.map { "'\($0.name)'" }.joined(separator: ", ") }
    static var huggingFaceNamesForMessages: String { all.flatMap(\.huggingFaceArchitectures).joined(separator: ", ") }
}

// Readers shared by the families' files.
extension ModelFamily {
    /// The hyperparameters every family's GGUF keys state alike (`<arch>.embedding_length`, …).
    static func ggufBase(_ fields: ConfigFields, vocabulary: Int, architecture: Architecture) throws -> ModelConfig {
        let heads = try fields.required("attention.head_count")
        return ModelConfig(vocabSize: try fields.integer("vocab_size", default: vocabulary), contextLength: try fields.required("context_length"),
                           dModel: try fields.required("embedding_length"), numLayers: try fields.required("block_count"),
                           numHeads: heads, dFF: try fields.required("feed_forward_length"),
                           ropeTheta: try fields.number("rope.freq_base") ?? 10_000,
                           numKVHeads: try fields.integer("attention.head_count_kv", default: heads),
                           normEps: Float(try fields.number("attention.layer_norm_rms_epsilon") ?? 1e-5), architecture: architecture)
    }

    /// A GGUF head size: `attention.key_length` when stated and different from `d/H` (it must
    /// equal `attention.value_length`), and `rope.dimension_count` must cover the whole head.
    static func ggufHeadDim(_ fields: ConfigFields, dModel: Int, heads: Int) throws -> Int? {
        let key = try fields.integer("attention.key_length"), value = try fields.integer("attention.value_length")
        if let key, let value, key != value {
            throw ModelError("\(fields.source): \(fields.what("attention.key_length")) \(key) differs from attention.value_length \(value); heads of two sizes are not implemented")
        }
        let head = key ?? value ?? dModel / max(heads, 1)
        if let rotated = try fields.integer("rope.dimension_count"), rotated != head {
            throw ModelError("\(fields.source): \(fields.what("rope.dimension_count")) is \(rotated) but heads are \(head) wide; partial RoPE is not implemented")
        }
        return heads > 0 && head * heads == dModel ? nil : head
    }

    /// Refuses GGUF RoPE scaling other than what `allowed` lists.
    static func ggufRopeScaling(_ fields: ConfigFields, allowed: [String] = []) throws -> (type: String, factor: Double)? {
        guard let type = try fields.string("rope.scaling.type"), type != "none" else { return nil }
        guard allowed.contains(type) else {
            throw ModelError("\(fields.source): \(fields.what("rope.scaling.type")) is '\(type)'; RoPE scaling of this kind is not implemented")
        }
        guard let factor = try fields.number("rope.scaling.factor"), factor > 0 else {
            throw ModelError("\(fields.source): \(fields.what("rope.scaling.factor")) is missing or not positive")
        }
        return (type, factor)
    }

    /// The hyperparameters every family's `config.json` states alike.
    static func huggingFaceBase(_ fields: ConfigFields, architecture: Architecture) throws -> ModelConfig {
        let heads = try fields.required("num_attention_heads")
        var architecture = architecture
        let dModel = try fields.required("hidden_size")
        if let headDim = try fields.integer("head_dim"), headDim != dModel / max(heads, 1) || dModel % max(heads, 1) != 0 {
            architecture.headDim = headDim
        }
        return ModelConfig(vocabSize: try fields.required("vocab_size"), contextLength: try fields.integer("max_position_embeddings", default: 2048),
                           dModel: dModel, numLayers: try fields.required("num_hidden_layers"), numHeads: heads,
                           dFF: try fields.required("intermediate_size"), ropeTheta: try huggingFaceRopeTheta(fields) ?? 10_000,
                           numKVHeads: try fields.integer("num_key_value_heads"), normEps: Float(try fields.number("rms_norm_eps") ?? 1e-6),
                           architecture: architecture)
    }

    /// `rope_theta` at the top level (older transformers) or in `rope_parameters` (newer).
    static func huggingFaceRopeTheta(_ fields: ConfigFields) throws -> Double? {
        if let parameters = try fields.object("rope_parameters"), let theta = try parameters.number("rope_theta") { return theta }
        return try fields.number("rope_theta")
    }

    /// Refuses a `rope_scaling` / `rope_parameters` type other than the default (or `allowed`).
    static func huggingFaceRopeType(_ parameters: ConfigFields?, allowed: [String] = []) throws -> String? {
        guard let parameters else { return nil }
        let type = try parameters.string("rope_type") ?? parameters.string("type") ?? "default"
        guard type == "default" || allowed.contains(type) else {
            throw ModelError("\(parameters.source): \(parameters.what("rope_type")) is '\(type)'; this RoPE scaling is not implemented")
        }
        return type == "default" ? nil : type
    }

    /// Refuses the fields a family's forward does not implement when they are set.
    static func refuse(_ fields: ConfigFields, flags: [String]) throws {
        for flag in flags where try fields.bool(flag) == true {
            throw ModelError("\(fields.source): \(fields.what(flag)) is true; this is not implemented for this family")
        }
    }

    /// `hidden_act` / `hidden_activation` must be `expected` (any of them).
    static func requireActivation(_ fields: ConfigFields, key: String, _ expected: [String]) throws {
        if let activation = try fields.string(key), !expected.contains(activation) {
            throw ModelError("\(fields.source): \(fields.what(key)) is '\(activation)'; this family's feed-forward network uses \(expected.joined(separator: " or "))")
        }
    }
}
