import Kernels
import Synchronization
import TensorIO

/// A GGUF file of llama.cpp's `llama` architecture (SmolLM2, TinyLlama, Llama 2 and 3 without
/// RoPE scaling, Mistral) as a ``TransformerLM``: the hyperparameters from the `llama.*` keys,
/// every tensor dequantized to Float32 into our layout under our names.
///
/// llama.cpp's converter stores the q and k rows permuted for RoPE on interleaved pairs, which
/// is what our kernel rotates, so they are read as they are. A file without `output.weight` has
/// its head tied to the embedding: the head is a copy of it. Anything this engine does not
/// implement (another architecture, RoPE scaling, a tensor it has no place for) is refused with
/// the key or tensor named.
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
        let perLayer = ["attn_q.weight": "attn.q_proj.weight", "attn_k.weight": "attn.k_proj.weight", "attn_v.weight": "attn.v_proj.weight",
                        "attn_output.weight": "attn.output_proj.weight", "ffn_gate.weight": "ffn.w1.weight", "ffn_up.weight": "ffn.w3.weight",
                        "ffn_down.weight": "ffn.w2.weight", "attn_norm.weight": "ln1.weight", "ffn_norm.weight": "ln2.weight"]
        return perLayer[String(parts[2])].map { "layers.\(layer).\($0)" }
    }

    /// The model's hyperparameters from the file's `llama.*` keys.
    public static func config(of file: GGUFFile) throws -> ModelConfig {
        func value(_ key: String) -> GGUFValue? { file.metadata[key] }
        func integer(_ key: String) throws -> Int {
            guard let value = value(key) else { throw ModelError("\(file.path): metadata key '\(key)' is missing") }
            guard let number = value.int else { throw ModelError("\(file.path): metadata key '\(key)' is \(value), not an integer") }
            return number
        }
        let architecture = value("general.architecture")?.string ?? "(none)"
        guard architecture == "llama" else {
            throw ModelError("\(file.path): general.architecture is '\(architecture)'; this engine runs the 'llama' architecture")
        }
        if let scaling = value("llama.rope.scaling.type")?.string, scaling != "none" {
            throw ModelError("\(file.path): metadata key 'llama.rope.scaling.type' is '\(scaling)'; RoPE scaling is not implemented")
        }
        let dModel = try integer("llama.embedding_length"), heads = try integer("llama.attention.head_count")
        let kvHeads = value("llama.attention.head_count_kv") == nil ? heads : try integer("llama.attention.head_count_kv")
        guard let embedding = file.tensor("token_embd.weight") else { throw ModelError("\(file.path): tensor 'token_embd.weight' is missing") }
        let vocab = value("llama.vocab_size") == nil ? embedding.shape[0] : try integer("llama.vocab_size")
        let epsilon = value("llama.attention.layer_norm_rms_epsilon")?.double ?? 1e-5
        let theta = value("llama.rope.freq_base")?.double ?? 10_000
        // Llama 3.1/3.2's frequency scaling: llama.cpp's converter stores the divisors as a tensor.
        var factors: [Double]?
        if let tensor = file.tensor(Self.ropeFactorsTensor) {
            guard tensor.dimensions.count == 1, tensor.elementCount <= 1 << 16 else {
                throw ModelError("\(file.path): tensor '\(Self.ropeFactorsTensor)' has shape \(tensor.shape), expected one divisor per RoPE pair")
            }
            factors = try Checkpoint.mapFileErrors { try file.floats(tensor.name) }.map(Double.init)
        }
        let config = ModelConfig(vocabSize: vocab, contextLength: try integer("llama.context_length"), dModel: dModel,
                                 numLayers: try integer("llama.block_count"), numHeads: heads, dFF: try integer("llama.feed_forward_length"),
                                 ropeTheta: theta, numKVHeads: kvHeads, normEps: Float(epsilon), ropeFrequencyFactors: factors)
        do { try config.validate() } catch let error as ModelError { throw ModelError("\(file.path): \(error.message)") }
        if value("llama.rope.dimension_count") != nil {
            let rotated = try integer("llama.rope.dimension_count")
            guard rotated == config.headDim else {
                throw ModelError("\(file.path): llama.rope.dimension_count is \(rotated) but heads are \(config.headDim) wide; partial RoPE is not implemented")
            }
        }
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
                throw ModelError("\(path): tensor '\(tensor.name)' has no place in a llama model of this configuration")
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
                    throw ModelError("\(path): tensor for '\(entry.name)' is missing")
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
        guard !quantized.isEmpty else { return try TransformerLM(config: config, parameters: parameters) }
        return try TransformerLM(config: config, parameters: parameters, quantized: quantized, keeping: file)
    }
}
