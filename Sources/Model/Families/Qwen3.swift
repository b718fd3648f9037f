import Foundation
import TensorIO

extension ModelFamily {
    /// Qwen 3 (`Qwen3ForCausalLM`, GGUF `qwen3`): Llama's block with QK-norm, the head size
    /// stated (128 at d_model 1,024 with 16 heads), RoPE on halves, the head tied or not.
    public static let qwen3 = ModelFamily(
        name: "qwen3", huggingFaceArchitectures: ["Qwen3ForCausalLM"], huggingFaceModelTypes: ["qwen3"],
        ggufConfig: { fields, _, vocabulary, tiedHead in
            _ = try ggufRopeScaling(fields)
            var config = try ggufBase(fields, vocabulary: vocabulary, architecture: qwen3Architecture(tied: tiedHead))
            config.architecture.headDim = try ggufHeadDim(fields, dModel: config.dModel, heads: config.numHeads)
            return config
        },
        huggingFaceConfig: { fields in
            try qwenChecks(fields)
            try refuse(fields, flags: ["attention_bias"])
            let tied = try fields.bool("tie_word_embeddings") ?? false
            return (try huggingFaceBase(fields, architecture: qwen3Architecture(tied: tied)), tied)
        },
        huggingFaceNorms: ["input_layernorm.weight": "ln1.weight", "post_attention_layernorm.weight": "ln2.weight"])

    /// Qwen 3's additions to the seed's block (set `headDim` where it is stated), with the head tied or not.
    public static func qwen3Architecture(tied: Bool) -> Architecture {
        var architecture = Architecture()
        architecture.family = "qwen3"
        architecture.qkNorm = true
        architecture.ropeStyle = .halves
        architecture.tiedEmbeddings = tied
        return architecture
    }
}
