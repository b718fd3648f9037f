/// The weights of one Transformer block for the reference, CS336 names, `[out, in]`.
public struct ReferenceBlockWeights<T: ReferenceFloat> {
    public var wq: [T], wk: [T], wv: [T], wo: [T]
    public var w1: [T], w2: [T], w3: [T]
    public var ln1: [T], ln2: [T]

    public init(wq: [T], wk: [T], wv: [T], wo: [T], w1: [T], w2: [T], w3: [T], ln1: [T], ln2: [T]) {
        (self.wq, self.wk, self.wv, self.wo, self.w1, self.w2, self.w3, self.ln1, self.ln2) = (wq, wk, wv, wo, w1, w2, w3, ln1, ln2)
    }
}

/// Sizes shared by the reference block and model.
public struct ReferenceShape {
    public var dim: Int, heads: Int, kvHeads: Int, hidden: Int
    public var theta: Double, epsilon: Double
    public init(dim: Int, heads: Int, kvHeads: Int, hidden: Int, theta: Double, epsilon: Double = 1e-5) {
        (self.dim, self.heads, self.kvHeads, self.hidden, self.theta, self.epsilon) = (dim, heads, kvHeads, hidden, theta, epsilon)
    }
}

extension Reference {
    /// x: [batch, length, dim] → [batch, length, dim]: h = x + attention(rmsnorm(x)),
    /// y = h + swiglu(rmsnorm(h)), positions 0..<length.
    public static func transformerBlock<T: ReferenceFloat>(_ x: [T], _ w: ReferenceBlockWeights<T>, batch: Int, length: Int, shape: ReferenceShape) -> [T] {
        let rows = batch * length, eps = T(shape.epsilon)
        let attention = causalSelfAttention(rmsNorm(x, weight: w.ln1, rows: rows, dim: shape.dim, epsilon: eps),
                                            wq: w.wq, wk: w.wk, wv: w.wv, wo: w.wo, batch: batch, length: length, dim: shape.dim,
                                            heads: shape.heads, kvHeads: shape.kvHeads, positions: Array(0..<length), theta: T(shape.theta))
        let h = zip(x, attention).map { $0 + $1 }
        let ffn = swiglu(rmsNorm(h, weight: w.ln2, rows: rows, dim: shape.dim, epsilon: eps),
                         w1: w.w1, w2: w.w2, w3: w.w3, rows: rows, dim: shape.dim, hidden: shape.hidden)
        return zip(h, ffn).map { $0 + $1 }
    }

    /// tokens: [batch, length] → logits [batch, length, vocab]: embedding, blocks, final
    /// RMSNorm, lm_head.
    public static func transformerLM<T: ReferenceFloat>(
        tokens: [Int], embedding: [T], blocks: [ReferenceBlockWeights<T>], finalNorm: [T], head: [T],
        batch: Int, length: Int, vocab: Int, shape: ReferenceShape
    ) -> [T] {
        var x = Reference.embedding(tokens, table: embedding, dim: shape.dim)
        for block in blocks { x = transformerBlock(x, block, batch: batch, length: length, shape: shape) }
        let normed = rmsNorm(x, weight: finalNorm, rows: batch * length, dim: shape.dim, epsilon: T(shape.epsilon))
        return linear(normed, weight: head, rows: batch * length, inFeatures: shape.dim, outFeatures: vocab)
    }
}
