import Foundation
import Kernels

/// What a model family changes in the seed's pre-norm Llama block, as data: the parameter
/// layout, the name maps of the loaders and the exporter, the forward, the backward and the KV
/// cache are all derived from it (``ModelFamily`` says where each family's files keep it).
///
/// The defaults are Llama's: head size `dModel / numHeads`, no QK-norm, no biases, norms only
/// before attention and the feed-forward network, SwiGLU, RoPE on interleaved pairs, every
/// layer global, attention scale `1/√headDim`, a separate head. Stored in our `config.json`
/// beside the CS336 keys, and only where it differs from Llama, so a Llama config reads and
/// writes as it always has.
public struct Architecture: Codable, Equatable, Sendable {
    /// The family's name (`llama`, `qwen2`, `qwen3`, `gemma3`): what an exported GGUF file states
    /// as `general.architecture`.
    public var family: String = "llama"
    /// The head size when stated (Qwen 3: 128 at d_model 1,024 with 16 heads; Gemma 3: 256);
    /// nil: `dModel / numHeads`.
    public var headDim: Int?
    /// RMSNorm over each query and key head (its own gain of `headDim`), before RoPE.
    public var qkNorm = false
    /// Biases on the q, k and v projections (Qwen 2).
    public var qkvBias = false
    /// An RMSNorm on the attention output and on the feed-forward output before each is added
    /// to the residual stream (Gemma 2 and 3), besides the norms before them.
    public var postNorms = false
    /// The feed-forward network's gate: `silu` (SwiGLU) or `gelu_tanh` (GeGLU, Gemma).
    public var activation: GatedActivation = .silu
    /// Embeddings are multiplied by this before the first block (Gemma: `√dModel`, rounded to Float32).
    public var embeddingScale: Float?
    /// How RoPE pairs a head's dimensions: interleaved `(2i, 2i+1)` (the seed's; llama.cpp's
    /// permuted Llama files) or halves `(i, i + d/2)` (transformers' `rotate_half`, Qwen and Gemma).
    public var ropeStyle: RoPEStyle = .interleaved
    /// The window of sliding-window layers: a query at position p sees keys `p − window + 1 … p`.
    public var slidingWindow: Int?
    /// Which layers slide: `true` for a sliding-window layer; empty: every layer global.
    public var slidingLayers: [Bool] = []
    /// RoPE base of sliding layers (Gemma 3: 10,000); nil: the model's `rope_theta`.
    public var localRopeTheta: Double?
    /// Linear RoPE scaling of global layers (positions divided by it; Gemma 3 4B and larger: 8).
    public var globalRopeScale: Double?
    /// The attention scale; nil: `1/√headDim` (Gemma 3: `query_pre_attn_scalar^-½`).
    public var attentionScale: Float?
    /// Logits become `cap · tanh(logits / cap)` (Gemma 2); nil: none.
    public var finalLogitSoftcap: Float?
    /// The head is the embedding matrix itself (one tensor, its gradient the sum of both uses).
    public var tiedEmbeddings = false
    /// Hugging Face stores every RMSNorm gain as `w` for `x·(1 + w)` (Gemma). Ours hold the
    /// effective gain `1 + w`, as llama.cpp's GGUF files do: the forward and backward are the
    /// plain RMSNorm's, and the loaders add (the writers subtract) this offset.
    public var huggingFaceGainOffset: Float = 0

    /// The seed's Llama block.
    public static let llama = Architecture()

    public init() {}

    /// The feed-forward network's gate activation.
    public typealias GatedActivation = Kernels.GatedActivation

    /// Whether layer `layer` attends through a sliding window.
    public func slides(layer: Int) -> Bool { slidingWindow != nil && slidingLayers.indices.contains(layer) && slidingLayers[layer] }

    /// The window of layer `layer`, nil for a global layer.
    public func window(layer: Int) -> Int? { slides(layer: layer) ? slidingWindow : nil }

    /// Whether any layer differs from Llama's block.
    public var isLlama: Bool { self == .llama }

    /// Rejects settings no model can be built from, naming the field.
    func validate(layers: Int, headDim: Int) throws {
        if let stated = self.headDim, stated <= 0 { throw ModelError("config: head_dim must be positive, got \(stated)") }
        if let window = slidingWindow, window < 1 { throw ModelError("config: sliding_window must be positive, got \(window)") }
        if !slidingLayers.isEmpty {
            guard slidingLayers.count == layers else {
                throw ModelError("config: sliding_layers lists \(slidingLayers.count) layers, the model has \(layers)")
            }
            guard slidingWindow != nil || !slidingLayers.contains(true) else {
                throw ModelError("config: sliding_layers marks sliding layers but sliding_window is not set")
            }
        }
        for (key, value) in [("local_rope_theta", localRopeTheta), ("global_rope_scale", globalRopeScale)] {
            if let value, !(value.isFinite && value > 0) { throw ModelError("config: \(key) must be positive, got \(value)") }
        }
        for (key, value) in [("embedding_scale", embeddingScale), ("attention_scale", attentionScale), ("final_logit_softcap", finalLogitSoftcap)] {
            if let value, !(value.isFinite && value > 0) { throw ModelError("config: \(key) must be positive, got \(value)") }
        }
        guard huggingFaceGainOffset == 0 || huggingFaceGainOffset == 1 else {
            throw ModelError("config: hf_gain_offset must be 0 or 1, got \(huggingFaceGainOffset)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case family = "architecture", headDim = "head_dim", qkNorm = "qk_norm", qkvBias = "qkv_bias", postNorms = "post_norms"
        case activation, embeddingScale = "embedding_scale", ropeStyle = "rope_style", slidingWindow = "sliding_window"
        case slidingLayers = "sliding_layers", localRopeTheta = "local_rope_theta", globalRopeScale = "global_rope_scale"
        case attentionScale = "attention_scale", finalLogitSoftcap = "final_logit_softcap", tiedEmbeddings = "tied_embeddings"
        case huggingFaceGainOffset = "hf_gain_offset"
    }

    /// Every key optional: an absent one keeps Llama's setting.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let llama = Architecture.llama
        family = try c.decodeIfPresent(String.self, forKey: .family) ?? llama.family
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        qkNorm = try c.decodeIfPresent(Bool.self, forKey: .qkNorm) ?? llama.qkNorm
        qkvBias = try c.decodeIfPresent(Bool.self, forKey: .qkvBias) ?? llama.qkvBias
        postNorms = try c.decodeIfPresent(Bool.self, forKey: .postNorms) ?? llama.postNorms
        activation = try c.decodeIfPresent(GatedActivation.self, forKey: .activation) ?? llama.activation
        embeddingScale = try c.decodeIfPresent(Float.self, forKey: .embeddingScale)
        ropeStyle = try c.decodeIfPresent(RoPEStyle.self, forKey: .ropeStyle) ?? llama.ropeStyle
        slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow)
        slidingLayers = try c.decodeIfPresent([Bool].self, forKey: .slidingLayers) ?? []
        localRopeTheta = try c.decodeIfPresent(Double.self, forKey: .localRopeTheta)
        globalRopeScale = try c.decodeIfPresent(Double.self, forKey: .globalRopeScale)
        attentionScale = try c.decodeIfPresent(Float.self, forKey: .attentionScale)
        finalLogitSoftcap = try c.decodeIfPresent(Float.self, forKey: .finalLogitSoftcap)
        tiedEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tiedEmbeddings) ?? llama.tiedEmbeddings
        huggingFaceGainOffset = try c.decodeIfPresent(Float.self, forKey: .huggingFaceGainOffset) ?? llama.huggingFaceGainOffset
    }

    /// Only the keys that differ from Llama's.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let llama = Architecture.llama
        if family != llama.family { try c.encode(family, forKey: .family) }
        try c.encodeIfPresent(headDim, forKey: .headDim)
        if qkNorm { try c.encode(qkNorm, forKey: .qkNorm) }
        if qkvBias { try c.encode(qkvBias, forKey: .qkvBias) }
        if postNorms { try c.encode(postNorms, forKey: .postNorms) }
        if activation != llama.activation { try c.encode(activation, forKey: .activation) }
        try c.encodeIfPresent(embeddingScale, forKey: .embeddingScale)
        if ropeStyle != llama.ropeStyle { try c.encode(ropeStyle, forKey: .ropeStyle) }
        try c.encodeIfPresent(slidingWindow, forKey: .slidingWindow)
        if !slidingLayers.isEmpty { try c.encode(slidingLayers, forKey: .slidingLayers) }
        try c.encodeIfPresent(localRopeTheta, forKey: .localRopeTheta)
        try c.encodeIfPresent(globalRopeScale, forKey: .globalRopeScale)
        try c.encodeIfPresent(attentionScale, forKey: .attentionScale)
        try c.encodeIfPresent(finalLogitSoftcap, forKey: .finalLogitSoftcap)
        if tiedEmbeddings { try c.encode(tiedEmbeddings, forKey: .tiedEmbeddings) }
        if huggingFaceGainOffset != 0 { try c.encode(huggingFaceGainOffset, forKey: .huggingFaceGainOffset) }
    }
}
