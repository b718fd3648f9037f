import Foundation

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
    /// Query heads per attention layer; head size is `dModel / numHeads`.
    public var numHeads: Int
    /// Hidden width of the SwiGLU feed-forward network.
    public var dFF: Int
    /// RoPE base Θ.
    public var ropeTheta: Double
    /// Key/value heads (grouped-query attention); defaults to `numHeads` when absent.
    public var numKVHeads: Int
    /// RMSNorm epsilon; defaults to 1e-5 when absent.
    public var normEps: Float

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", contextLength = "context_length", dModel = "d_model"
        case numLayers = "num_layers", numHeads = "num_heads", dFF = "d_ff", ropeTheta = "rope_theta"
        case numKVHeads = "num_kv_heads", normEps = "norm_eps"
    }

    public init(vocabSize: Int, contextLength: Int, dModel: Int, numLayers: Int, numHeads: Int,
                dFF: Int, ropeTheta: Double, numKVHeads: Int? = nil, normEps: Float = 1e-5) {
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.dModel = dModel
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.dFF = dFF
        self.ropeTheta = ropeTheta
        self.numKVHeads = numKVHeads ?? numHeads
        self.normEps = normEps
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
            normEps: try c.decodeIfPresent(Float.self, forKey: .normEps) ?? 1e-5)
    }

    /// Size of one attention head.
    public var headDim: Int { dModel / numHeads }
    /// Width of the key/value projections.
    public var kvDim: Int { numKVHeads * headDim }
}
