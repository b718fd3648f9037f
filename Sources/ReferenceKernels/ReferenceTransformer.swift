/// The weights of one Transformer block for the reference, CS336 names, `[out, in]`.
public struct ReferenceBlockWeights<T: ReferenceFloat> {
    public var wq: [T], wk: [T], wv: [T], wo: [T]
    public var w1: [T], w2: [T], w3: [T]
    public var ln1: [T], ln2: [T]
    /// A family's additions: q, k, v biases, QK-norm gains, post-norm gains (nil: none).
    public var qkvBias: (q: [T], k: [T], v: [T])?
    public var queryNorm: [T]?, keyNorm: [T]?
    public var postAttentionNorm: [T]?, postFeedForwardNorm: [T]?

    public init(wq: [T], wk: [T], wv: [T], wo: [T], w1: [T], w2: [T], w3: [T], ln1: [T], ln2: [T]) {
        (self.wq, self.wk, self.wv, self.wo, self.w1, self.w2, self.w3, self.ln1, self.ln2) = (wq, wk, wv, wo, w1, w2, w3, ln1, ln2)
    }
}

/// What one layer of a family does differently: its sliding window and RoPE base.
public struct ReferenceLayer {
    public var window: Int?
    public var theta: Double
    /// Positions divided by this in RoPE (linear scaling).
    public var ropeScale: Double
    public init(window: Int? = nil, theta: Double, ropeScale: Double = 1) { (self.window, self.theta, self.ropeScale) = (window, theta, ropeScale) }
}

/// Sizes shared by the reference block and model.
public struct ReferenceShape {
    public var dim: Int, heads: Int, kvHeads: Int, hidden: Int
    public var theta: Double, epsilon: Double
    /// A family's settings (defaults: the seed's): stated head size, RoPE on halves, GeGLU,
    /// embedding and score scales, final logit soft-cap, per-layer window and RoPE base.
    public var headDim: Int?
    public var ropeHalves = false, geluTanh = false
    public var embeddingScale: Double?, attentionScale: Double?, finalSoftcap: Double?
    /// One per block; empty: every layer global at `theta`.
    public var layers: [ReferenceLayer] = []
    public init(dim: Int, heads: Int, kvHeads: Int, hidden: Int, theta: Double, epsilon: Double = 1e-5) {
        (self.dim, self.heads, self.kvHeads, self.hidden, self.theta, self.epsilon) = (dim, heads, kvHeads, hidden, theta, epsilon)
    }
}

extension Reference {
    /// x: [batch, length, dim] → [batch, length, dim]: h = x + attention(rmsnorm(x)),
    /// y = h + swiglu(rmsnorm(h)), positions 0..<length; with post-norm gains each branch is
    /// normed again before it is added (Gemma). `layer` gives the block's window and RoPE base.
    public static func transformerBlock<T: ReferenceFloat>(_ x: [T], _ w: ReferenceBlockWeights<T>, batch: Int, length: Int, shape: ReferenceShape,
                                                           layer: ReferenceLayer? = nil) -> [T] {
        let rows = batch * length, eps = T(shape.epsilon)
        let options = ReferenceAttentionOptions<T>(
            headDim: shape.headDim, qkvBias: w.qkvBias, queryNorm: w.queryNorm, keyNorm: w.keyNorm, normEpsilon: eps,
            ropeHalves: shape.ropeHalves, ropeScale: T(layer?.ropeScale ?? 1), window: layer?.window, scale: shape.attentionScale.map { T($0) })
        var attention = causalSelfAttention(rmsNorm(x, weight: w.ln1, rows: rows, dim: shape.dim, epsilon: eps),
                                            wq: w.wq, wk: w.wk, wv: w.wv, wo: w.wo, batch: batch, length: length, dim: shape.dim,
                                            heads: shape.heads, kvHeads: shape.kvHeads, positions: Array(0..<length),
                                            theta: T(layer?.theta ?? shape.theta), options: options)
        if let post = w.postAttentionNorm { attention = rmsNorm(attention, weight: post, rows: rows, dim: shape.dim, epsilon: eps) }
        let h = zip(x, attention).map { $0 + $1 }
        var ffn = swiglu(rmsNorm(h, weight: w.ln2, rows: rows, dim: shape.dim, epsilon: eps),
                         w1: w.w1, w2: w.w2, w3: w.w3, rows: rows, dim: shape.dim, hidden: shape.hidden, gelu: shape.geluTanh)
        if let post = w.postFeedForwardNorm { ffn = rmsNorm(ffn, weight: post, rows: rows, dim: shape.dim, epsilon: eps) }
        return zip(h, ffn).map { $0 + $1 }
    }

    /// tokens: [batch, length] → logits [batch, length, vocab]: embedding, blocks, final
    /// RMSNorm, lm_head.
    public static func transformerLM<T: ReferenceFloat>(
        tokens: [Int], embedding: [T], blocks: [ReferenceBlockWeights<T>], finalNorm: [T], head: [T],
        batch: Int, length: Int, vocab: Int, shape: ReferenceShape
    ) -> [T] {
        var x = Reference.embedding(tokens, table: embedding, dim: shape.dim)
        if let scale = shape.embeddingScale { x = x.map { $0 * T(scale) } }
        for (index, block) in blocks.enumerated() {
            x = transformerBlock(x, block, batch: batch, length: length, shape: shape, layer: shape.layers.isEmpty ? nil : shape.layers[index])
        }
        let normed = rmsNorm(x, weight: finalNorm, rows: batch * length, dim: shape.dim, epsilon: T(shape.epsilon))
        let logits = linear(normed, weight: head, rows: batch * length, inFeatures: shape.dim, outFeatures: vocab)
        guard let cap = shape.finalSoftcap.map({ T($0) }) else { return logits }
        return logits.map { cap * T.tanh($0 / cap) }
    }
}
