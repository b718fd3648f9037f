import Foundation
import Kernels
import TensorIO

/// A Hugging Face model directory of a `LlamaForCausalLM` (SmolLM2, TinyLlama, Llama 2, 3, 3.1
/// and 3.2 with their RoPE frequency scaling) as a ``TransformerLM``: `config.json` for the hyperparameters, one
/// `model.safetensors` or the shards a `model.safetensors.index.json` lists, F32/F16/BF16,
/// decoded into our layout under our names.
///
/// Transformers rotates the two halves of each head (`rotate_half`: dimension i pairs with
/// i + d/2); our RoPE kernel rotates interleaved pairs (2i, 2i + 1). The same rotation is
/// reached by permuting the rows of the q and k projections on load (``interleavedRow(_:headSize:)``),
/// exactly as llama.cpp's converter does when it writes a GGUF file, so the kernel is unchanged.
public enum HuggingFaceCheckpoint {
    public static let configFile = "config.json"
    public static let singleWeightsFile = "model.safetensors"
    public static let indexFile = "model.safetensors.index.json"

    /// Whether `directory/config.json` is a Hugging Face config (it names `architectures` or
    /// `model_type`; ours has neither).
    public static func isHuggingFaceDirectory(_ directory: String) -> Bool {
        guard let object = try? configObject(directory) else { return false }
        return object["architectures"] != nil || object["model_type"] != nil
    }

    /// The model's hyperparameters from `config.json`; a field we do not implement is an error
    /// naming it.
    public static func config(directory: String) throws -> ModelConfig { try read(directory).config }

    /// The configuration and whether the head is the embedding (`tie_word_embeddings`, false
    /// when absent as in transformers' `LlamaConfig`), from one reading of `config.json`.
    static func read(_ directory: String) throws -> (config: ModelConfig, tiesHead: Bool) {
        let path = (directory as NSString).appendingPathComponent(configFile)
        let json = try configObject(directory)
        func field<T>(_ key: String, _ type: T.Type) throws -> T? {
            guard let value = json[key], !(value is NSNull) else { return nil }
            guard let typed = value as? T else { throw ModelError("\(path): field '\(key)' is \(value), not a \(T.self)") }
            return typed
        }
        func integer(_ key: String) throws -> Int? {
            guard let number = try field(key, NSNumber.self) else { return nil }
            guard let exact = Int(exactly: number.doubleValue) else { throw ModelError("\(path): field '\(key)' is \(number), not an integer") }
            return exact
        }
        func required(_ key: String) throws -> Int {
            guard let value = try integer(key) else { throw ModelError("\(path): field '\(key)' is missing") }
            return value
        }
        let architectures = try field("architectures", [String].self) ?? []
        let modelType = try field("model_type", String.self)
        guard architectures.contains("LlamaForCausalLM") || (architectures.isEmpty && modelType == "llama") else {
            throw ModelError("\(path): field 'architectures' is \(architectures) (model_type \(modelType ?? "none")); this engine runs LlamaForCausalLM")
        }
        for flag in ["attention_bias", "mlp_bias"] where try field(flag, Bool.self) == true {
            throw ModelError("\(path): field '\(flag)' is true; biases in attention or the feed-forward network are not implemented")
        }
        if let activation = try field("hidden_act", String.self), activation != "silu" {
            throw ModelError("\(path): field 'hidden_act' is '\(activation)'; the feed-forward network is SwiGLU (silu)")
        }
        // Newer transformers write rope_theta inside rope_parameters; older configs at the top level.
        let ropeParameters = try field("rope_parameters", [String: Any].self)
        let topLevelTheta = try field("rope_theta", NSNumber.self)
        let theta = (ropeParameters?["rope_theta"] as? NSNumber ?? topLevelTheta)?.doubleValue ?? 10_000
        var llama3Scaling: (key: String, fields: [String: Any])?
        for (key, scaling) in [("rope_scaling", try field("rope_scaling", [String: Any].self)), ("rope_parameters", ropeParameters)] {
            guard let scaling else { continue }
            let type = (scaling["rope_type"] ?? scaling["type"]) as? String ?? "default"
            if type == "llama3" { llama3Scaling = (key, scaling); continue }
            guard type == "default" else {
                throw ModelError("\(path): field '\(key).rope_type' is '\(type)'; of the RoPE scalings only Llama 3's ('llama3') is implemented")
            }
        }
        let dModel = try required("hidden_size"), heads = try required("num_attention_heads")
        if let headDim = try integer("head_dim"), heads > 0, headDim * heads != dModel {
            throw ModelError("\(path): field 'head_dim' is \(headDim) but hidden_size / num_attention_heads is \(dModel / heads); heads narrower than d_model / heads are not implemented")
        }
        let epsilon = (try field("rms_norm_eps", NSNumber.self))?.floatValue ?? 1e-6
        let config = ModelConfig(vocabSize: try required("vocab_size"), contextLength: try integer("max_position_embeddings") ?? 2048,
                                 dModel: dModel, numLayers: try required("num_hidden_layers"), numHeads: heads,
                                 dFF: try required("intermediate_size"), ropeTheta: theta,
                                 numKVHeads: try integer("num_key_value_heads"), normEps: epsilon,
                                 ropeFrequencyFactors: try llama3Scaling.map { key, fields in
                                     func number(_ name: String) throws -> Double {
                                         guard let value = (fields[name] as? NSNumber)?.doubleValue, value > 0 else {
                                             throw ModelError("\(path): field '\(key).\(name)' is missing or not a positive number (rope_type llama3)")
                                         }
                                         return value
                                     }
                                     let low = try number("low_freq_factor"), high = try number("high_freq_factor")
                                     guard high > low else { throw ModelError("\(path): field '\(key).high_freq_factor' must exceed low_freq_factor") }
                                     return ModelConfig.llama3FrequencyFactors(headDim: dModel / max(heads, 1), theta: theta, factor: try number("factor"),
                                                                               lowFrequencyFactor: low, highFrequencyFactor: high,
                                                                               originalContext: try number("original_max_position_embeddings"))
                                 })
        do { try config.validate() } catch let error as ModelError { throw ModelError("\(path): \(error.message)") }
        return (config, try field("tie_word_embeddings", Bool.self) ?? false)
    }

    /// Our tensor name for each of transformers' names; nil for names with no place here.
    static func ourName(_ name: String) -> String? {
        let whole = ["model.embed_tokens.weight": "token_embeddings.weight", "model.norm.weight": "ln_final.weight", "lm_head.weight": "lm_head.weight"]
        if let mapped = whole[name] { return mapped }
        let parts = name.split(separator: ".", maxSplits: 3)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]) else { return nil }
        let perLayer = ["self_attn.q_proj.weight": "attn.q_proj.weight", "self_attn.k_proj.weight": "attn.k_proj.weight",
                        "self_attn.v_proj.weight": "attn.v_proj.weight", "self_attn.o_proj.weight": "attn.output_proj.weight",
                        "mlp.gate_proj.weight": "ffn.w1.weight", "mlp.up_proj.weight": "ffn.w3.weight", "mlp.down_proj.weight": "ffn.w2.weight",
                        "input_layernorm.weight": "ln1.weight", "post_attention_layernorm.weight": "ln2.weight"]
        return perLayer[String(parts[3])].map { "layers.\(layer).\($0)" }
    }

    /// Loads the directory: configuration, then every tensor checked and decoded, q/k rows
    /// permuted for interleaved RoPE.
    public static func load(directory: String) throws -> TransformerLM {
        let (config, tied) = try read(directory)
        let layout = ParameterLayout(config: config)
        let shards = try SafeTensorsShards(directory: directory)
        var placed: [String: (file: SafeTensorsFile, entry: TensorEntry)] = [:]
        for (file, entry) in shards.tensors {
            // Older checkpoints store the RoPE frequencies as a buffer; they are recomputed here.
            if entry.name.hasSuffix("rotary_emb.inv_freq") { continue }
            guard let name = ourName(entry.name), let wanted = layout.entry(name) else {
                throw ModelError("\(file.path): tensor '\(entry.name)' has no place in a llama model of this configuration")
            }
            guard entry.shape == wanted.shape else {
                throw ModelError("\(file.path): tensor '\(entry.name)' has shape \(ShapeText.abbreviated(entry.shape)), the configuration needs \(wanted.shape)")
            }
            guard entry.type.isFloatingPoint else { throw ModelError("\(file.path): tensor '\(entry.name)' is \(entry.type.rawValue), expected a floating-point dtype") }
            placed[name] = (file, entry)
        }
        let parameters = TensorBuffer(count: layout.totalCount)
        for wanted in layout.entries {
            let values = parameters.slice(wanted.offset, wanted.count)
            guard let (file, entry) = placed[wanted.name] else {
                guard wanted.name == "lm_head.weight", tied, let embedding = layout.entry("token_embeddings.weight") else {
                    let hint = wanted.name == "lm_head.weight" ? " (and tie_word_embeddings is not true)" : ""
                    throw ModelError("\(directory): tensor for '\(wanted.name)' is missing\(hint)")
                }
                _ = values.update(fromContentsOf: parameters.view(embedding.offset, embedding.count))
                continue
            }
            do { try file.read(entry.name, shape: wanted.shape, into: values) } catch let error as TensorFileError { throw ModelError(error.description) }
            try ModelError.requireFinite(values, tensor: entry.name, path: file.path)
            if wanted.name.hasSuffix("attn.q_proj.weight") || wanted.name.hasSuffix("attn.k_proj.weight") {
                permuteForInterleavedRoPE(values, rows: wanted.shape[0], columns: wanted.shape[1], headSize: config.headDim)
            }
        }
        return try TransformerLM(config: config, parameters: parameters)
    }

    /// Where transformers' row `row` of a q/k projection goes in ours: within each head,
    /// half-split dimension `j·d/2 + i` (j = 0, 1) becomes interleaved dimension `2i + j`.
    public static func interleavedRow(_ row: Int, headSize: Int) -> Int {
        let head = row / headSize, within = row % headSize, half = headSize / 2
        return head * headSize + 2 * (within % half) + within / half
    }

    /// Reorders the rows of a `[rows, columns]` q/k weight (heads of `headSize` rows) from
    /// rotate-half order to interleaved-pair order.
    static func permuteForInterleavedRoPE(_ values: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int, headSize: Int) {
        let original = Array(values)
        original.withUnsafeBufferPointer { source in
            for row in 0..<rows {
                let target = interleavedRow(row, headSize: headSize)
                _ = UnsafeMutableBufferPointer(rebasing: values[(target * columns)..<((target + 1) * columns)])
                    .update(fromContentsOf: source[(row * columns)..<((row + 1) * columns)])
            }
        }
    }

    private static func configObject(_ directory: String) throws -> [String: Any] {
        let path = (directory as NSString).appendingPathComponent(configFile)
        let data: Data
        do { data = try InputFile.read(path) } catch let error as TensorFileError { throw ModelError(error.description) }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError("\(path): not a JSON object")
        }
        return object
    }
}
