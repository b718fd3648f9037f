import Foundation
import TensorIO

extension ModelFamily {
    /// Qwen 3 (`Qwen3ForCausalLM`, GGUF `qwen3`): Llama's block with QK-norm, the head size
    /// stated (128 at d_model 1,024 with 16 heads), RoPE on halves, the head tied or not.
    public static let qwen3 = qwen(name: "qwen3", huggingFaceClass: "Qwen3ForCausalLM", architecture: qwen3Architecture)

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
