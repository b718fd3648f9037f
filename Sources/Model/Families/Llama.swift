import Foundation
import TensorIO

extension ModelFamily {
    /// Llama (SmolLM2, TinyLlama, Llama 2, 3, 3.1 and 3.2, Mistral without its window): the seed's
    /// block, ``Architecture/llama``. llama.cpp's converter permutes q and k into interleaved
    /// RoPE pairs, as the seed's kernel rotates; the Hugging Face loader permutes them the same
    /// way. Llama 3.1/3.2's frequency scaling: `rope_freqs.weight` in GGUF, `rope_type: llama3`
    /// in `config.json`.
    public static let llama = ModelFamily(
        name: "llama", huggingFaceArchitectures: ["LlamaForCausalLM"], huggingFaceModelTypes: ["llama"],
        ggufConfig: { fields, file, vocabulary, _ in
            _ = try ggufRopeScaling(fields)
            var config = try ggufBase(fields, vocabulary: vocabulary, architecture: .llama)
            config.architecture.headDim = try ggufHeadDim(fields, dModel: config.dModel, heads: config.numHeads)
            // Llama 3.1/3.2's frequency scaling: llama.cpp's converter stores the divisors as a tensor.
            if let tensor = file.tensor(GGUFCheckpoint.ropeFactorsTensor) {
                guard tensor.dimensions.count == 1, tensor.elementCount <= 1 << 16 else {
                    throw ModelError("\(file.path): tensor '\(GGUFCheckpoint.ropeFactorsTensor)' has shape \(tensor.shape), expected one divisor per RoPE pair")
                }
                config.ropeFrequencyFactors = try Checkpoint.mapFileErrors { try file.floats(tensor.name) }.map(Double.init)
            }
            return config
        },
        huggingFaceConfig: { fields in
            try refuse(fields, flags: ["attention_bias", "mlp_bias"])
            try requireActivation(fields, key: "hidden_act", ["silu"])
            var config = try huggingFaceBase(fields, architecture: .llama)
            for key in ["rope_scaling", "rope_parameters"] {
                let parameters = try fields.object(key)
                guard try huggingFaceRopeType(parameters, allowed: ["llama3"]) != nil, let scaling = parameters else { continue }
                func number(_ name: String) throws -> Double {
                    guard let value = try scaling.number(name), value > 0 else {
                        throw ModelError("\(fields.source): \(scaling.what(name)) is missing or not a positive number (rope_type llama3)")
                    }
                    return value
                }
                let low = try number("low_freq_factor"), high = try number("high_freq_factor")
                guard high > low else { throw ModelError("\(fields.source): \(scaling.what("high_freq_factor")) must exceed low_freq_factor") }
                config.ropeFrequencyFactors = ModelConfig.llama3FrequencyFactors(
                    headDim: config.headDim, theta: config.ropeTheta, factor: try number("factor"), lowFrequencyFactor: low,
                    highFrequencyFactor: high, originalContext: try number("original_max_position_embeddings"))
            }
            return (config, try fields.bool("tie_word_embeddings") ?? false)
        },
        huggingFaceNorms: ["input_layernorm.weight": "ln1.weight", "post_attention_layernorm.weight": "ln2.weight"])
}
