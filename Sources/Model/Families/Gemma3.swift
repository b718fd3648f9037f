import Foundation
import TensorIO

extension ModelFamily {
    /// Gemma 3 text models (`Gemma3ForCausalLM` / `gemma3_text`, GGUF `gemma3`): embeddings
    /// scaled by `√d`; RMSNorm as `x·(1 + w)` (llama.cpp's converter stores `1 + w`, as our
    /// parameters do; Hugging Face's `w` gets the 1 added on load); QK-norm; a norm after
    /// attention and after the feed-forward network as well as before; gated GELU (tanh); a
    /// 512-token sliding window on five of every six layers with RoPE base 10,000, the sixth
    /// global with the file's base (and linear RoPE scaling where the config asks for it, 4B and
    /// larger); head size 256 stated; attention scale `query_pre_attn_scalar^-½`; tied head.
    public static let gemma3 = ModelFamily(
        name: "gemma3", huggingFaceArchitectures: ["Gemma3ForCausalLM"], huggingFaceModelTypes: ["gemma3_text"],
        ggufConfig: { fields, _, vocabulary, tiedHead in
            guard tiedHead else { throw ModelError("\(fields.source): tensor 'output.weight' is present; Gemma 3's head is the embedding") }
            if try fields.number("attn_logit_softcapping") != nil {
                throw ModelError("\(fields.source): \(fields.what("attn_logit_softcapping")) is set; attention-score soft-capping is not implemented")
            }
            var config = try ggufBase(fields, vocabulary: vocabulary, architecture: Architecture())
            let layers = config.numLayers
            // llama.cpp: five sliding layers out of every six unless the file states the pattern.
            let pattern = try fields.integer("attention.sliding_window_pattern", default: 6)
            let window = try fields.integer("attention.sliding_window")
            var architecture = gemma3Architecture(dModel: config.dModel, layers: layers, window: window,
                                                  sliding: (0..<layers).map { pattern == 0 || $0 % pattern < pattern - 1 })
            architecture.headDim = try ggufHeadDim(fields, dModel: config.dModel, heads: config.numHeads)
            // llama.cpp's base for Gemma 3's sliding layers unless the file states one.
            architecture.localRopeTheta = try fields.number("rope.freq_base_swa") ?? 10_000
            architecture.globalRopeScale = try ggufRopeScaling(fields, allowed: ["linear"])?.factor
            // llama.cpp scales the 27B model's scores by (d/H)^-½ (its query_pre_attn_scalar), the others by head size^-½.
            if layers == 62 { architecture.attentionScale = 1 / Float(config.dModel / config.numHeads).squareRoot() }
            architecture.finalLogitSoftcap = try fields.number("final_logit_softcapping").map(Float.init)
            config.architecture = architecture
            config.normEps = Float(try fields.number("attention.layer_norm_rms_epsilon") ?? 1e-6)
            return config
        },
        huggingFaceConfig: { fields in
            try requireActivation(fields, key: "hidden_activation", ["gelu_pytorch_tanh"])
            try requireActivation(fields, key: "hidden_act", ["gelu_pytorch_tanh"])
            if try fields.number("attn_logit_softcapping") != nil {
                throw ModelError("\(fields.source): \(fields.what("attn_logit_softcapping")) is set; attention-score soft-capping is not implemented")
            }
            try refuse(fields, flags: ["attention_bias"])
            var config = try huggingFaceBase(fields, architecture: Architecture())
            let layers = config.numLayers
            var sliding: [Bool]
            if let types = try fields.strings("layer_types") {
                guard types.count == layers else {
                    throw ModelError("\(fields.source): \(fields.what("layer_types")) lists \(types.count) layers, the model has \(layers)")
                }
                if let unknown = types.first(where: { $0 != "sliding_attention" && $0 != "full_attention" }) { throw ModelError("\(fields.source): \(fields.what("layer_types")) has '\(unknown)'; the layer types are sliding_attention and full_attention") }
                sliding = types.map { $0 == "sliding_attention" }
            } else {
                let pattern = try fields.integer("sliding_window_pattern", default: 6)
                sliding = (0..<layers).map { pattern == 0 || ($0 + 1) % pattern != 0 }
            }
            var architecture = gemma3Architecture(dModel: config.dModel, layers: layers, window: try fields.integer("sliding_window"), sliding: sliding)
            architecture.headDim = config.architecture.headDim
            // RoPE per layer type: transformers 5 nests them in rope_parameters; older configs
            // give rope_theta, rope_local_base_freq and rope_scaling.
            let parameters = try fields.object("rope_parameters")
            if let full = try parameters?.object("full_attention") {
                config.ropeTheta = try full.number("rope_theta") ?? config.ropeTheta
                if try huggingFaceRopeType(full, allowed: ["linear"]) != nil { architecture.globalRopeScale = try full.number("factor") }
                if let local = try parameters?.object("sliding_attention") {
                    _ = try huggingFaceRopeType(local)
                    architecture.localRopeTheta = try local.number("rope_theta")
                }
            } else {
                architecture.localRopeTheta = try fields.number("rope_local_base_freq")
                if let scaling = try fields.object("rope_scaling"), try huggingFaceRopeType(scaling, allowed: ["linear"]) != nil {
                    architecture.globalRopeScale = try scaling.number("factor")
                }
            }
            architecture.localRopeTheta = architecture.localRopeTheta ?? 10_000
            if let scalar = try fields.number("query_pre_attn_scalar"), scalar != Double(config.headDim) {
                architecture.attentionScale = Float(1 / scalar.squareRoot())
            }
            architecture.finalLogitSoftcap = try fields.number("final_logit_softcapping").map(Float.init)
            config.architecture = architecture
            let tied = try fields.bool("tie_word_embeddings") ?? true
            guard tied else { throw ModelError("\(fields.source): \(fields.what("tie_word_embeddings")) is false; Gemma 3's head is the embedding") }
            return (config, tied)
        },
        huggingFaceNorms: ["input_layernorm.weight": "ln1.weight", "post_attention_layernorm.weight": "post_attn_norm.weight",
                           "pre_feedforward_layernorm.weight": "ln2.weight", "post_feedforward_layernorm.weight": "post_ffn_norm.weight"])

    /// Gemma 3's additions to the seed's block for `layers` layers, those marked in `sliding` over a `window`
    /// (set `headDim`, `localRopeTheta` and the scales the config states).
    public static func gemma3Architecture(dModel: Int, layers: Int, window: Int?, sliding: [Bool]) -> Architecture {
        var architecture = Architecture()
        architecture.family = "gemma3"
        architecture.qkNorm = true
        architecture.postNorms = true
        architecture.activation = .geluTanh
        architecture.embeddingScale = Float(dModel).squareRoot()
        architecture.ropeStyle = .halves
        architecture.slidingWindow = window
        architecture.slidingLayers = window == nil ? [] : sliding
        architecture.tiedEmbeddings = true
        architecture.huggingFaceGainOffset = 1
        return architecture
    }
}
