extension Reference {
    /// x: [rows, dim] (dim even), positions: [rows] → [rows, dim], each interleaved pair
    /// (x[2i], x[2i+1]) rotated by angle position / theta^(2i/dim).
    public static func rope<T: ReferenceFloat>(_ x: [T], rows: Int, dim: Int, positions: [Int], theta: T) -> [T] {
        var y = x
        for r in 0..<rows {
            for i in 0..<(dim / 2) {
                let angle = T(positions[r]) / T.pow(theta, T(2 * i) / T(dim))
                let x0 = x[r * dim + 2 * i], x1 = x[r * dim + 2 * i + 1]
                y[r * dim + 2 * i] = x0 * T.cos(angle) - x1 * T.sin(angle)
                y[r * dim + 2 * i + 1] = x0 * T.sin(angle) + x1 * T.cos(angle)
            }
        }
        return y
    }

    /// q: [queries, d], k, v: [keys, d], allowed: [queries, keys] (nil = all) → [queries, d],
    /// softmax(q·kᵀ/√d over allowed keys) · v, for one head.
    public static func attention<T: ReferenceFloat>(q: [T], k: [T], v: [T], queries: Int, keys: Int, headDim d: Int, allowed: [Bool]? = nil) -> [T] {
        var scores = [T](repeating: 0, count: queries * keys)
        for i in 0..<queries {
            for j in 0..<keys {
                var dot: T = 0
                for c in 0..<d { dot += q[i * d + c] * k[j * d + c] }
                scores[i * keys + j] = dot / T(d).squareRoot()
            }
        }
        let p = softmax(scores, rows: queries, cols: keys, allowed: allowed)
        return matmul(p, v, m: queries, k: keys, n: d)
    }

    /// The lower-triangular mask [length, length]: query i sees keys 0...i.
    public static func causalMask(_ length: Int) -> [Bool] {
        (0..<(length * length)).map { $0 % length <= $0 / length }
    }

    /// x: [batch, T, C]; wq: [H·d, C]; wk, wv: [Hkv·d, C]; wo: [C, H·d]; positions: [T]
    /// → [batch, T, C], causal multi-head self-attention with RoPE on Q and K (grouped-query
    /// when Hkv < H: query head h uses key/value head h / (H / Hkv)).
    public static func causalSelfAttention<T: ReferenceFloat>(
        _ x: [T], wq: [T], wk: [T], wv: [T], wo: [T],
        batch: Int, length: Int, dim: Int, heads: Int, kvHeads: Int, positions: [Int], theta: T
    ) -> [T] {
        let d = dim / heads
        var y: [T] = []
        for b in 0..<batch {
            let xb = Array(x[(b * length * dim)..<((b + 1) * length * dim)])
            let q = linear(xb, weight: wq, rows: length, inFeatures: dim, outFeatures: heads * d)
            let k = linear(xb, weight: wk, rows: length, inFeatures: dim, outFeatures: kvHeads * d)
            let v = linear(xb, weight: wv, rows: length, inFeatures: dim, outFeatures: kvHeads * d)
            var context = [T](repeating: 0, count: length * heads * d)
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                let qh = rope(column(q, width: heads * d, from: h * d, count: d), rows: length, dim: d, positions: positions, theta: theta)
                let kh = rope(column(k, width: kvHeads * d, from: g * d, count: d), rows: length, dim: d, positions: positions, theta: theta)
                let vh = column(v, width: kvHeads * d, from: g * d, count: d)
                let oh = attention(q: qh, k: kh, v: vh, queries: length, keys: length, headDim: d, allowed: causalMask(length))
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
