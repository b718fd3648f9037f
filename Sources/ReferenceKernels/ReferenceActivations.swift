extension Reference {
    /// x: [rows, dim], weight: [dim] → [rows, dim], x / sqrt(mean(x²) + eps) ⊙ weight.
    public static func rmsNorm<T: ReferenceFloat>(_ x: [T], weight: [T], rows: Int, dim: Int, epsilon: T = 1e-5) -> [T] {
        var y = [T](repeating: 0, count: rows * dim)
        for r in 0..<rows {
            var meanSquare: T = 0
            for i in 0..<dim { meanSquare += x[r * dim + i] * x[r * dim + i] }
            meanSquare /= T(dim)
            let rms = (meanSquare + epsilon).squareRoot()
            for i in 0..<dim { y[r * dim + i] = x[r * dim + i] / rms * weight[i] }
        }
        return y
    }

    /// Elementwise x · σ(x).
    public static func silu<T: ReferenceFloat>(_ x: [T]) -> [T] {
        x.map { $0 / (1 + T.exp(-$0)) }
    }

    /// x: [rows, cols] → [rows, cols]; softmax of each row over the entries where `allowed`
    /// ([rows, cols], nil = all) is true; masked entries and fully masked rows are 0.
    public static func softmax<T: ReferenceFloat>(_ x: [T], rows: Int, cols: Int, allowed: [Bool]? = nil) -> [T] {
        var y = [T](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            let visible = (0..<cols).filter { allowed?[r * cols + $0] ?? true }
            guard let maximum = visible.map({ x[r * cols + $0] }).max() else { continue }
            var total: T = 0
            for c in visible { total += T.exp(x[r * cols + c] - maximum) }
            for c in visible { y[r * cols + c] = T.exp(x[r * cols + c] - maximum) / total }
        }
        return y
    }

    /// Elementwise GELU, tanh approximation: ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    public static func geluTanh<T: ReferenceFloat>(_ x: [T]) -> [T] {
        let inner = T(0.7978845608028654)  // √(2/π)
        return x.map { T(0.5) * $0 * (1 + T.tanh(inner * ($0 + T(0.044715) * $0 * $0 * $0))) }
    }

    /// x: [rows, dim], gate/up weights w1, w3: [hidden, dim], down weight w2: [dim, hidden]
    /// → [rows, dim], w2 · (act(w1 · x) ⊙ w3 · x) with act silu (SwiGLU) or, with `gelu`, GELU-tanh (GeGLU).
    public static func swiglu<T: ReferenceFloat>(_ x: [T], w1: [T], w2: [T], w3: [T], rows: Int, dim: Int, hidden: Int, gelu: Bool = false) -> [T] {
        let gate = linear(x, weight: w1, rows: rows, inFeatures: dim, outFeatures: hidden)
        let a = gelu ? geluTanh(gate) : silu(gate)
        let b = linear(x, weight: w3, rows: rows, inFeatures: dim, outFeatures: hidden)
        let gated = zip(a, b).map { $0 * $1 }
        return linear(gated, weight: w2, rows: rows, inFeatures: hidden, outFeatures: dim)
    }
}
