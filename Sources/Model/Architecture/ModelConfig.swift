import Foundation
import TensorIO

/// The hyper-parameters of a ``TransformerLM``, stored as `config.json` beside the weights.
/// Field names on disk are the CS336 ones (`d_model`, `num_heads`, …).
public struct ModelConfig: Codable, Equatable, Sendable {
    /// Number of token ids; the embedding and output head have this many rows.
    public var vocabSize: Int
    /// Longest sequence the model attends over (RoPE table and KV-cache length).
    public var contextLength: Int
    /// Width of the residual stream.
    public var dModel: Int
    /// Number of Transformer blocks.
    public var numLayers: Int
    /// Query heads per attention layer; head size is ``headDim``.
    public var numHeads: Int
    /// Hidden width of the SwiGLU feed-forward network.
    public var dFF: Int
    /// RoPE base Θ.
    public var ropeTheta: Double
    /// Key/value heads (grouped-query attention); defaults to `numHeads` when absent.
    public var numKVHeads: Int
    /// RMSNorm epsilon; defaults to 1e-5 when absent.
    public var normEps: Float
    /// One divisor per RoPE frequency pair (`headDim / 2`), or nil for none: Llama 3.1/3.2's
    /// frequency scaling (``llama3FrequencyFactors(headDim:theta:factor:lowFrequencyFactor:highFrequencyFactor:originalContext:)``),
    /// or a GGUF file's `rope_freqs.weight`.
    public var ropeFrequencyFactors: [Double]?
    /// How the layers differ from the seed's Llama block (head size, QK-norm, biases, post-norms,
    /// gated GELU, sliding windows, …): ``Architecture/llama`` unless a family states otherwise.
    public var architecture: Architecture

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", contextLength = "context_length", dModel = "d_model"
        case numLayers = "num_layers", numHeads = "num_heads", dFF = "d_ff", ropeTheta = "rope_theta"
        case numKVHeads = "num_kv_heads", normEps = "norm_eps", ropeFrequencyFactors = "rope_frequency_factors"
    }

    public init(vocabSize: Int, contextLength: Int, dModel: Int, numLayers: Int, numHeads: Int,
                dFF: Int, ropeTheta: Double, numKVHeads: Int? = nil, normEps: Float = 1e-5, ropeFrequencyFactors: [Double]? = nil,
                architecture: Architecture = .llama) {
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.dModel = dModel
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.dFF = dFF
        self.ropeTheta = ropeTheta
        self.numKVHeads = numKVHeads ?? numHeads
        self.normEps = normEps
        self.ropeFrequencyFactors = ropeFrequencyFactors
        self.architecture = architecture
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            vocabSize: try c.decode(Int.self, forKey: .vocabSize),
            contextLength: try c.decode(Int.self, forKey: .contextLength),
            dModel: try c.decode(Int.self, forKey: .dModel),
            numLayers: try c.decode(Int.self, forKey: .numLayers),
            numHeads: try c.decode(Int.self, forKey: .numHeads),
            dFF: try c.decode(Int.self, forKey: .dFF),
            ropeTheta: try c.decode(Double.self, forKey: .ropeTheta),
            numKVHeads: try c.decodeIfPresent(Int.self, forKey: .numKVHeads),
            normEps: try c.decodeIfPresent(Float.self, forKey: .normEps) ?? 1e-5,
            ropeFrequencyFactors: try c.decodeIfPresent([Double].self, forKey: .ropeFrequencyFactors),
            architecture: try Architecture(from: decoder))
    }

    /// The CS336 keys, then the architecture's keys that differ from Llama's (a Llama config
    /// is written exactly as before).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(contextLength, forKey: .contextLength)
        try c.encode(dModel, forKey: .dModel)
        try c.encode(numLayers, forKey: .numLayers)
        try c.encode(numHeads, forKey: .numHeads)
        try c.encode(dFF, forKey: .dFF)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(numKVHeads, forKey: .numKVHeads)
        try c.encode(normEps, forKey: .normEps)
        try c.encodeIfPresent(ropeFrequencyFactors, forKey: .ropeFrequencyFactors)
        try architecture.encode(to: encoder)
    }

    /// Rejects configurations no model can be built from, naming the fields concerned.
    public func validate() throws {
        let positive: [(String, Int)] = [
            ("vocab_size", vocabSize), ("context_length", contextLength), ("d_model", dModel),
            ("num_layers", numLayers), ("num_heads", numHeads), ("d_ff", dFF), ("num_kv_heads", numKVHeads),
        ]
        for (key, value) in positive where value <= 0 {
            throw ModelError("config: \(key) must be positive, got \(value)")
        }
        guard vocabSize <= Int(Int32.max) else { throw ModelError("config: vocab_size \(vocabSize) does not fit token ids (Int32)") }
        if architecture.headDim == nil {
            guard dModel % numHeads == 0 else {
                throw ModelError("config: d_model \(dModel) is not divisible by num_heads \(numHeads) (and no head_dim is stated)")
            }
        }
        guard numHeads % numKVHeads == 0 else {
            throw ModelError("config: num_heads \(numHeads) is not a multiple of num_kv_heads \(numKVHeads)")
        }
        guard headDim > 0, headDim % 2 == 0 else {
            throw ModelError("config: head size \(headDim) must be even and positive for RoPE")
        }
        try architecture.validate(layers: numLayers, headDim: headDim)
        guard ropeTheta.isFinite && ropeTheta > 0 else { throw ModelError("config: rope_theta must be positive, got \(ropeTheta)") }
        guard normEps.isFinite && normEps > 0 else { throw ModelError("config: norm_eps must be positive, got \(normEps)") }
        if let factors = ropeFrequencyFactors {
            guard factors.count == headDim / 2, factors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw ModelError("config: rope_frequency_factors must be \(headDim / 2) positive numbers (one per pair of a head's dimensions), got \(factors.count)")
            }
        }
        try checkSizes()
    }

    /// The most layers a configuration may have.
    public static let maxLayers = 4096

    /// Number of parameters, overflow-checked: nil when it does not fit in an `Int`.
    public var checkedParameterCount: Int? {
        let (c, f, v) = (dModel, dFF, vocabSize)
        guard let kv = SizeLimits.product([numKVHeads, headDim]), let q = SizeLimits.product([numHeads, headDim]) else { return nil }
        let perLayer = SizeLimits.sum([SizeLimits.product([2, q, c]), SizeLimits.product([2, kv, c]), SizeLimits.product([3, c, f]),
                                       SizeLimits.product([4, c]), SizeLimits.product([2, q + 2 * kv])])
        return SizeLimits.sum([SizeLimits.product([architecture.tiedEmbeddings ? 1 : 2, v, c]),
                               perLayer.flatMap { SizeLimits.product([numLayers, $0]) }, c])
    }

    /// Sizes this machine can hold: the parameters (four bytes each) and the RoPE tables fit in
    /// its memory. Checked before anything is allocated; the error states what was asked for.
    private func checkSizes() throws {
        // Every layer is a set of named tensors: past this many, the layout itself (not the
        // weights) would fill memory. The largest published models have a few hundred.
        guard numLayers <= Self.maxLayers else {
            throw ModelError("config: num_layers \(numLayers) is above the \(Self.maxLayers) this engine supports")
        }
        let memory = SizeLimits.physicalMemory
        let fields = "vocab_size \(vocabSize), d_model \(dModel), num_layers \(numLayers), d_ff \(dFF)"
        guard let count = checkedParameterCount, let bytes = SizeLimits.product([count, 4]), bytes <= memory / 2 else {
            let estimate = 4 * (2 * Double(vocabSize) * Double(dModel) + Double(numLayers) * (4 * Double(dModel) * Double(dModel) + 3 * Double(dModel) * Double(dFF)))
            throw ModelError("config: \(fields) would need \(SizeLimits.bytes(estimate)) of parameters, more than half of this machine's \(SizeLimits.bytes(Double(memory))) of memory")
        }
        guard let rope = SizeLimits.product([contextLength, headDim, 4]), rope <= memory / 4 else {
            throw ModelError("config: context_length \(contextLength) would need \(SizeLimits.bytes(4 * Double(contextLength) * Double(headDim))) of RoPE tables; this machine has \(SizeLimits.bytes(Double(memory))) of memory")
        }
    }

    /// Reads and validates a `config.json`; errors name the file and the key.
    public static func load(path: String) throws -> ModelConfig {
        let data: Data
        do { data = try InputFile.read(path) } catch let error as TensorFileError {
            throw ModelError(error.description)
        }
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelError("\(path): missing key '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ModelError("\(path): key '\(key)' has the wrong type (\(context.debugDescription))")
        } catch let DecodingError.dataCorrupted(context) {
            throw ModelError("\(path): not valid JSON (\(context.debugDescription))")
        } catch {
            throw ModelError("\(path): \(error)")
        }
        do {
            try config.validate()
        } catch let error as ModelError {
            throw ModelError("\(path): \(error.message)")
        }
        return config
    }

    /// Writes `config.json` atomically, keys sorted.
    public func save(path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: path)
    }

    /// Llama 3's RoPE frequency scaling (transformers' `rope_type: llama3`) as one divisor per
    /// pair: wavelengths shorter than `originalContext / highFrequencyFactor` keep their
    /// frequency, those longer than `originalContext / lowFrequencyFactor` are divided by
    /// `factor`, and the band between is interpolated smoothly.
    public static func llama3FrequencyFactors(headDim: Int, theta: Double, factor: Double, lowFrequencyFactor: Double,
                                              highFrequencyFactor: Double, originalContext: Double) -> [Double] {
        (0..<(headDim / 2)).map { pair in
            let frequency = 1 / Foundation.pow(theta, Double(2 * pair) / Double(headDim))
            let wavelength = 2 * Double.pi / frequency
            if wavelength < originalContext / highFrequencyFactor { return 1 }
            if wavelength > originalContext / lowFrequencyFactor { return factor }
            let smooth = (originalContext / wavelength - lowFrequencyFactor) / (highFrequencyFactor - lowFrequencyFactor)
            return 1 / ((1 - smooth) / factor + smooth)
        }
    }

    /// Size of one attention head: the architecture's stated size, else `dModel / numHeads`.
    public var headDim: Int { architecture.headDim ?? dModel / max(numHeads, 1) }
    /// Width of the key/value projections.
    public var kvDim: Int { numKVHeads * headDim }
    /// Width of the queries and of the attention output before its projection: `numHeads · headDim`
    /// (`dModel` unless the head size is stated otherwise).
    public var attentionWidth: Int { numHeads * headDim }
    /// Width of the fused query/key/value projection: `attentionWidth + 2 · kvDim`.
    public var qkvWidth: Int { (numHeads + 2 * numKVHeads) * headDim }

    /// The first id outside `0..<vocabSize`, with its index, or nil when every id is a token:
    /// the one check of token ids wherever they enter the model.
    public func firstInvalidToken(in tokens: some Collection<Int32>, allowing allowed: Int32? = nil) -> (index: Int, id: Int32)? {
        for (index, id) in tokens.enumerated() where (id < 0 || Int(id) >= vocabSize) && id != allowed { return (index, id) }
        return nil
    }
}
