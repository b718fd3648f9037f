extension Reference {
    /// x: [rows, dim] (dim even), positions: [rows] → [rows, dim], each pair rotated by angle
    /// position / (theta^(2i/dim) · scale): interleaved pairs (x[2i], x[2i+1]), or with `halves`
    /// (x[i], x[i + dim/2]) as transformers' `rotate_half` pairs them.
    public static func rope<T: ReferenceFloat>(_ x: [T], rows: Int, dim: Int, positions: [Int], theta: T, halves: Bool = false,
                                               scale: T = 1) -> [T] {
        var y = x
        for r in 0..<rows {
            for i in 0..<(dim / 2) {
                let angle = T(positions[r]) / (T.pow(theta, T(2 * i) / T(dim)) * scale)
                let (a, b) = halves ? (r * dim + i, r * dim + i + dim / 2) : (r * dim + 2 * i, r * dim + 2 * i + 1)
                let x0 = x[a], x1 = x[b]
                y[a] = x0 * T.cos(angle) - x1 * T.sin(angle)
                y[b] = x0 * T.sin(angle) + x1 * T.cos(angle)
            }
        }
        return y
    }

    /// q: [queries, d], k, v: [keys, d], allowed: [queries, keys] (nil = all) → [queries, d],
    /// softmax(q·kᵀ/√d over allowed keys) · v, for one head.
    public static func attention<T: ReferenceFloat>(q: [T], k: [T], v: [T], queries: Int, keys: Int, headDim d: Int, allowed: [Bool]? = nil,
                                                    scale: T? = nil) -> [T] {
        var scores = [T](repeating: 0, count: queries * keys)
        let alpha = scale ?? 1 / T(d).squareRoot()
        for i in 0..<queries {
            for j in 0..<keys {
                var dot: T = 0
                for c in 0..<d { dot += q[i * d + c] * k[j * d + c] }
                scores[i * keys + j] = dot * alpha
            }
        }
        let p = softmax(scores, rows: queries, cols: keys, allowed: allowed)
        return matmul(p, v, m: queries, k: keys, n: d)
    }

    /// The lower-triangular mask [length, length]: query i sees keys 0...i; with `window`,
    /// only keys i − window + 1 ... i.
    public static func causalMask(_ length: Int, window: Int? = nil) -> [Bool] {
        (0..<(length * length)).map { index in
            let (query, key) = index.quotientAndRemainder(dividingBy: length)
            return key <= query && key > query - (window ?? length + 1)
        }
    }

    /// x: [batch, T, C]; wq: [H·d, C]; wk, wv: [Hkv·d, C]; wo: [C, H·d]; positions: [T]
    /// → [batch, T, C], causal multi-head self-attention with RoPE on Q and K (grouped-query
    /// when Hkv < H: query head h uses key/value head h / (H / Hkv)). `options` adds a family's
    /// head size, biases, QK-norm, RoPE pairing and scale, window and score scale.
    public static func causalSelfAttention<T: ReferenceFloat>(
        _ x: [T], wq: [T], wk: [T], wv: [T], wo: [T],
        batch: Int, length: Int, dim: Int, heads: Int, kvHeads: Int, positions: [Int], theta: T,
        options: ReferenceAttentionOptions<T> = ReferenceAttentionOptions()
    ) -> [T] {
        let d = options.headDim ?? dim / heads
        var y: [T] = []
        func project(_ x: [T], _ weight: [T], _ bias: [T]?, _ width: Int) -> [T] {
            let out = linear(x, weight: weight, rows: length, inFeatures: dim, outFeatures: width)
            guard let bias else { return out }
            return out.enumerated().map { $1 + bias[$0 % width] }
        }
        func prepare(_ head: [T], norm: [T]?) -> [T] {
            let normed = norm.map { rmsNorm(head, weight: $0, rows: length, dim: d, epsilon: options.normEpsilon) } ?? head
            return rope(normed, rows: length, dim: d, positions: positions, theta: theta, halves: options.ropeHalves, scale: options.ropeScale)
        }
        for b in 0..<batch {
            let xb = Array(x[(b * length * dim)..<((b + 1) * length * dim)])
            let q = project(xb, wq, options.qkvBias?.q, heads * d)
            let k = project(xb, wk, options.qkvBias?.k, kvHeads * d)
            let v = project(xb, wv, options.qkvBias?.v, kvHeads * d)
            var context = [T](repeating: 0, count: length * heads * d)
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                let qh = prepare(column(q, width: heads * d, from: h * d, count: d), norm: options.queryNorm)
                let kh = prepare(column(k, width: kvHeads * d, from: g * d, count: d), norm: options.keyNorm)
                let vh = column(v, width: kvHeads * d, from: g * d, count: d)
                let oh = attention(q: qh, k: kh, v: vh, queries: length, keys: length, headDim: d,
                                   allowed: causalMask(length, window: options.window), scale: options.scale)
                for t in 0..<length {
                    for c in 0..<d { context[t * heads * d + h * d + c] = oh[t * d + c] }
                }
            }
            y += linear(context, weight: wo, rows: length, inFeatures: heads * d, outFeatures: dim)
        }
        return y
    }

    /// The columns from..<from+count of a [rows, width] matrix, as [rows, count].
    static func column<T>(_ x: [T], width: Int, from: Int, count: Int) -> [T] {
        stride(from: 0, to: x.count, by: width).flatMap { x[($0 + from)..<($0 + from + count)] }
    }
}

/// What a family adds to the reference's attention (all absent: the seed's).
public struct ReferenceAttentionOptions<T: ReferenceFloat> {
    /// The head size when stated; nil: dim / heads.
    public var headDim: Int?
    /// Biases of the q [H·d], k and v [Hkv·d] projections.
    public var qkvBias: (q: [T], k: [T], v: [T])?
    /// QK-norm gains [d], applied to each head before RoPE.
    public var queryNorm: [T]?, keyNorm: [T]?
    public var normEpsilon: T
    /// RoPE on halves (i, i + d/2) rather than interleaved pairs, and positions divided by `ropeScale`.
    public var ropeHalves: Bool, ropeScale: T
    /// Sliding window: a query sees the last `window` positions, itself included.
    public var window: Int?
    /// The score scale; nil: 1/√d.
    public var scale: T?

    public init(headDim: Int? = nil, qkvBias: (q: [T], k: [T], v: [T])? = nil, queryNorm: [T]? = nil, keyNorm: [T]? = nil,
                normEpsilon: T = 1e-6, ropeHalves: Bool = false, ropeScale: T = 1, window: Int? = nil, scale: T? = nil) {
        (self.headDim, self.qkvBias, self.queryNorm, self.keyNorm, self.normEpsilon) = (headDim, qkvBias, queryNorm, keyNorm, normEpsilon)
        (self.ropeHalves, self.ropeScale, self.window, self.scale) = (ropeHalves, ropeScale, window, scale)
    }
}
