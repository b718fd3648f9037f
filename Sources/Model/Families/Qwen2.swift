import Foundation
import TensorIO

extension ModelFamily {
    /// Qwen 2 and 2.5 (`Qwen2ForCausalLM`, GGUF `qwen2`): Llama's block with biases on the q, k
    /// and v projections, RoPE on halves, the head tied or not.
    public static let qwen2 = qwen(name: "qwen2", huggingFaceClass: "Qwen2ForCausalLM", architecture: qwen2Architecture)

    /// Qwen 2's additions to the seed's block, with the head tied or not.
    public static func qwen2Architecture(tied: Bool) -> Architecture {
        var architecture = Architecture()
        architecture.family = "qwen2"
        architecture.qkvBias = true
        architecture.ropeStyle = .halves
        architecture.tiedEmbeddings = tied
        return architecture
    }

    /// A Qwen family: its GGUF keys and `config.json` read alike, into `architecture(tied)`.
    /// What Qwen's configs may ask for that is not implemented here is refused: sliding windows
    /// on some layers (`use_sliding_window`), RoPE scaling (YaRN), another activation, biases
    /// the architecture does not have.
    static func qwen(name: String, huggingFaceClass: String, architecture: @escaping @Sendable (_ tied: Bool) -> Architecture) -> ModelFamily {
        ModelFamily(
            name: name, huggingFaceArchitectures: [huggingFaceClass], huggingFaceModelTypes: [name],
            ggufConfig: { fields, _, vocabulary, tiedHead in
                _ = try ggufRopeScaling(fields)
                var config = try ggufBase(fields, vocabulary: vocabulary, architecture: architecture(tiedHead))
                config.architecture.headDim = try ggufHeadDim(fields, dModel: config.dModel, heads: config.numHeads)
                return config
            },
            huggingFaceConfig: { fields in
                try refuse(fields, flags: ["use_sliding_window", "mlp_bias"] + (architecture(false).qkvBias ? [] : ["attention_bias"]))
                try requireActivation(fields, key: "hidden_act", ["silu"])
                for key in ["rope_scaling", "rope_parameters"] { _ = try huggingFaceRopeType(try fields.object(key)) }
                let tied = try fields.bool("tie_word_embeddings") ?? false
                return (try huggingFaceBase(fields, architecture: architecture(tied)), tied)
            },
            huggingFaceNorms: ["input_layernorm.weight": "ln1.weight", "post_attention_layernorm.weight": "ln2.weight"])
    }
}
