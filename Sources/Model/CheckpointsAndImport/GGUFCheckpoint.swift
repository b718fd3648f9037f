import Kernels
import Synchronization
import TensorIO

/// A GGUF file of one of llama.cpp's architectures this engine runs (``ModelFamily/all``:
/// `llama` — SmolLM2, TinyLlama, Llama 2 and 3, Mistral —, `qwen2`, `qwen3`, `gemma3`) as a
/// ``TransformerLM``: the hyperparameters from the `<architecture>.*` keys (read by the
/// family), every tensor dequantized to Float32 into our layout under our names, or kept in its
/// blocks.
///
/// llama.cpp's converter stores Llama's q and k rows permuted for RoPE on interleaved pairs,
/// which the `llama` architecture rotates; the other families rotate halves, as the file holds
/// them. A Llama file without `output.weight` has its head tied to the embedding as a copy; the
/// other families' tied heads are the embedding itself. Anything this engine does not implement
/// (another architecture, a RoPE scaling, a tensor it has no place for) is refused with the key
/// or tensor named.
public enum GGUFCheckpoint {
    /// Decodes `tensor` into `values` with every thread, a range of rows each (the blocks of a
    /// row never straddle two ranges).
    static func dequantizeInParallel(_ file: GGUFFile, _ tensor: GGUFTensorInfo, into values: UnsafeMutableBufferPointer<Float>) throws {
        guard values.count == tensor.elementCount else {
            throw ModelError("\(file.path): tensor '\(tensor.name)' has \(tensor.elementCount) values, expected \(values.count)")
        }
        let failed = Atomic<Bool>(false), length = tensor.rowLength
        Threading.parallelRanges(tensor.rowCount, costPerItem: 4 * length) { rows in
            let out = UnsafeMutableBufferPointer(rebasing: values[(rows.lowerBound * length)..<(rows.upperBound * length)])
            if (try? file.dequantize(tensor, rows: rows, into: out)) == nil { failed.store(true, ordering: .relaxed) }
        }
        if failed.load(ordering: .relaxed) {
            try Checkpoint.mapFileErrors { try file.dequantize(tensor, rows: 0..<tensor.rowCount, into: values) }  // names the error
        }
    }

    /// Llama 3.1/3.2 files: one divisor per RoPE frequency pair (``ModelConfig/ropeFrequencyFactors``).
    static let ropeFactorsTensor = "rope_freqs.weight"

    /// Our tensor name for each of the file's, block `layer`'s or the model's.
    static func ourName(_ name: String) -> String? {
        let whole = ["token_embd.weight": "token_embeddings.weight", "output_norm.weight": "ln_final.weight", "output.weight": "lm_head.weight"]
        if let mapped = whole[name] { return mapped }
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        return layerNames[String(parts[2])].map { "layers.\(layer).\($0)" }
    }

    /// llama.cpp's per-layer names (after `blk.N.`), ours for each; the same in every family.
    static let layerNames = [
        "attn_q.weight": "attn.q_proj.weight", "attn_k.weight": "attn.k_proj.weight", "attn_v.weight": "attn.v_proj.weight",
        "attn_output.weight": "attn.output_proj.weight", "ffn_gate.weight": "ffn.w1.weight", "ffn_up.weight": "ffn.w3.weight",
        "ffn_down.weight": "ffn.w2.weight", "attn_norm.weight": "ln1.weight", "ffn_norm.weight": "ln2.weight",
        "attn_q.bias": "attn.q_proj.bias", "attn_k.bias": "attn.k_proj.bias", "attn_v.bias": "attn.v_proj.bias",
        "attn_q_norm.weight": "attn.q_norm.weight", "attn_k_norm.weight": "attn.k_norm.weight",
        "post_attention_norm.weight": "post_attn_norm.weight", "post_ffw_norm.weight": "post_ffn_norm.weight",
    ]

    /// The model's hyperparameters from the file's `<architecture>.*` keys, read by its family.
    public static func config(of file: GGUFFile) throws -> ModelConfig {
        let name = file.metadata["general.architecture"]?.string ?? "(none)"
        guard let family = ModelFamily.named(name) else {
            throw ModelError("\(file.path): general.architecture is '\(name)'; this engine runs the \(ModelFamily.namesForMessages) architectures")
        }
        guard let embedding = file.tensor("token_embd.weight") else { throw ModelError("\(file.path): tensor 'token_embd.weight' is missing") }
        let config = try family.ggufConfig(ConfigFields(gguf: file, architecture: name), file, embedding.shape[0], file.tensor("output.weight") == nil)
        do { try config.validate() } catch let error as ModelError { throw ModelError("\(file.path): \(error.message)") }
        return config
    }

    /// Loads `path`: every tensor checked against the configuration, then dequantized.
    public static func load(path: String) throws -> TransformerLM {
        try load(file: try Checkpoint.mapFileErrors { try GGUFFile(path: path) })
    }

    /// Loads an opened GGUF file (its tokenizer can be read from the same `GGUFFile`). With
    /// `keepQuantized`, matrices in any ``/Kernels/QuantizedMatrix/Format`` (Q8_0 … Q6_K) stay in their blocks in the mapped file
    /// (``/Kernels/QuantizedMatrix``; a tied head is the embedding's matrix itself) and only the others are
    /// decoded to Float32: the model then runs but cannot be trained or saved.
    ///
    /// `eightBitActivations` makes their one-row products (decode) round the activations to 8
    /// bits per block and use integer dot products, as llama.cpp does: faster, and the logits
    /// move by that rounding.
    public static func load(file: GGUFFile, keepQuantized: Bool = false, eightBitActivations: Bool = false) throws -> TransformerLM {
        let path = file.path
        let config = try self.config(of: file)
        let layout = ParameterLayout(config: config)
        var placed: [String: GGUFTensorInfo] = [:]
        for tensor in file.tensors where tensor.name != Self.ropeFactorsTensor {
            guard let name = ourName(tensor.name), let entry = layout.entry(name) else {
                throw ModelError("\(path): tensor '\(tensor.name)' has no place in a \(config.architecture.family) model of this configuration")
            }
            guard tensor.shape == entry.shape else {
                throw ModelError("\(path): tensor '\(tensor.name)' has shape \(tensor.shape), the configuration needs \(entry.shape)")
            }
            placed[name] = tensor
        }
        let parameters = TensorBuffer(count: layout.totalCount)
        var quantized: [String: QuantizedMatrix] = [:]
        let scratch = QuantizedMatrix.Scratch()
        for entry in layout.entries {
            let values = parameters.slice(entry.offset, entry.count)
            guard let tensor = placed[entry.name] else {
                // A missing head is the embedding (tied, decoded above: the layout puts it first).
                guard entry.name == "lm_head.weight", let embedding = layout.entry("token_embeddings.weight") else {
                    throw ModelError("\(path): tensor '\(GGUFExport.ggufName(entry.name))' (our '\(entry.name)') is missing for a \(config.architecture.family) model of this configuration")
                }
                if let table = quantized[embedding.name] {
                    quantized[entry.name] = table
                } else {
                    _ = values.update(fromContentsOf: parameters.view(embedding.offset, embedding.count))
                }
                continue
            }
            if keepQuantized, tensor.shape.count == 2, let format = QuantizedMatrix.Format(rawValue: Int32(tensor.type.rawValue)) {
                quantized[entry.name] = QuantizedMatrix(format: format, rows: tensor.shape[0], columns: tensor.shape[1],
                                                        blocks: file.blocks(of: tensor).baseAddress!, scratch: scratch)
                quantized[entry.name]!.quantizesActivations = eightBitActivations
                continue
            }
            try dequantizeInParallel(file, tensor, into: values)
            try ModelError.requireFinite(values, tensor: tensor.name, path: path)
        }
        try Checkpoint.mapFileErrors { try file.requireIntact() }
        guard !quantized.isEmpty else { return try TransformerLM(config: config, parameters: parameters) }
        return try TransformerLM(config: config, parameters: parameters, quantized: quantized, keeping: file)
    }
}
