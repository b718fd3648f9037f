import Foundation
import Kernels
import TensorIO

/// A Hugging Face model directory of a family this engine runs (``ModelFamily/all``:
/// `LlamaForCausalLM` — SmolLM2, TinyLlama, Llama 2, 3, 3.1 and 3.2 with their RoPE frequency
/// scaling —, `Qwen2ForCausalLM`, `Qwen3ForCausalLM`, `Gemma3ForCausalLM`) as a
/// ``TransformerLM``: `config.json` for the hyperparameters (read by the family), one
/// `model.safetensors` or the shards a `model.safetensors.index.json` lists, F32/F16/BF16,
/// decoded into our layout under our names.
///
/// Transformers rotates the two halves of each head (`rotate_half`: dimension i pairs with
/// i + d/2). Llama's architecture keeps the seed's RoPE on interleaved pairs (2i, 2i + 1): the
/// same rotation is reached by permuting the rows of the q and k projections on load
/// (``interleavedRow(_:headSize:)``), exactly as llama.cpp's converter does when it writes a GGUF
/// file. The other families rotate halves (``Architecture/ropeStyle``) and are read as stored.
/// Gemma's norm gains are stored as `w` for `x·(1 + w)`; ours hold `1 + w`.
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
    static func read(_ directory: String) throws -> (config: ModelConfig, tiesHead: Bool, family: ModelFamily) {
        let path = (directory as NSString).appendingPathComponent(configFile)
        let fields = ConfigFields(json: try configObject(directory), source: path)
        let architectures = try fields.strings("architectures") ?? []
        let modelType = try fields.string("model_type")
        guard let family = ModelFamily.huggingFace(architectures: architectures, modelType: modelType) else {
            throw ModelError("\(path): field 'architectures' is \(architectures) (model_type \(modelType ?? "none")); this engine runs \(ModelFamily.huggingFaceNamesForMessages)")
        }
        let (config, tied) = try family.huggingFaceConfig(fields)
        do { try config.validate() } catch let error as ModelError { throw ModelError("\(path): \(error.message)") }
        return (config, tied, family)
    }

    /// Our tensor name for each of transformers' names in `family`; nil for names with no place here.
    static func ourName(_ name: String, family: ModelFamily = .llama) -> String? {
        let whole = ["model.embed_tokens.weight": "token_embeddings.weight", "model.norm.weight": "ln_final.weight", "lm_head.weight": "lm_head.weight"]
        if let mapped = whole[name] { return mapped }
        let parts = name.split(separator: ".", maxSplits: 3)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]) else { return nil }
        let suffix = String(parts[3])
        return (layerNames[suffix] ?? family.huggingFaceNorms[suffix]).map { "layers.\(layer).\($0)" }
    }

    /// Transformers' per-layer names (after `model.layers.N.`) that every family shares, ours for
    /// each; the norms' names are the family's (``ModelFamily``).
    static let layerNames = [
        "self_attn.q_proj.weight": "attn.q_proj.weight", "self_attn.k_proj.weight": "attn.k_proj.weight",
        "self_attn.v_proj.weight": "attn.v_proj.weight", "self_attn.o_proj.weight": "attn.output_proj.weight",
        "mlp.gate_proj.weight": "ffn.w1.weight", "mlp.up_proj.weight": "ffn.w3.weight", "mlp.down_proj.weight": "ffn.w2.weight",
        "self_attn.q_proj.bias": "attn.q_proj.bias", "self_attn.k_proj.bias": "attn.k_proj.bias", "self_attn.v_proj.bias": "attn.v_proj.bias",
        "self_attn.q_norm.weight": "attn.q_norm.weight", "self_attn.k_norm.weight": "attn.k_norm.weight",
    ]

    /// Loads the directory: configuration, then every tensor checked and decoded, q/k rows
    /// permuted for interleaved RoPE.
    public static func load(directory: String) throws -> TransformerLM {
        let (config, tied, family) = try read(directory)
        let layout = ParameterLayout(config: config)
        let architecture = config.architecture
        let shards = try SafeTensorsShards(directory: directory)
        var placed: [String: (file: SafeTensorsFile, entry: TensorEntry)] = [:]
        for (file, entry) in shards.tensors {
            // Older checkpoints store the RoPE frequencies as a buffer; they are recomputed here.
            if entry.name.hasSuffix("rotary_emb.inv_freq") { continue }
            // A tied model's file may still hold the head (a copy of the embedding): it is the embedding here.
            if entry.name == "lm_head.weight", architecture.tiedEmbeddings { continue }
            guard let name = ourName(entry.name, family: family), let wanted = layout.entry(name) else {
                throw ModelError("\(file.path): tensor '\(entry.name)' has no place in a \(family.name) model of this configuration")
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
            if architecture.ropeStyle == .interleaved, wanted.name.hasSuffix("attn.q_proj.weight") || wanted.name.hasSuffix("attn.k_proj.weight") {
                permuteForInterleavedRoPE(values, rows: wanted.shape[0], columns: wanted.shape[1], headSize: config.headDim)
            }
            // Gemma's x·(1 + w): our gains are the effective 1 + w.
            if wanted.role == .gain, architecture.huggingFaceGainOffset != 0 {
                for i in values.indices { values[i] += architecture.huggingFaceGainOffset }
            }
        }
        try Checkpoint.mapFileErrors { try shards.requireIntact() }
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
