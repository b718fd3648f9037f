extension Reference {
    /// x: [rows, in], weight: [out, in] → [rows, out], y = x · Wᵀ.
    public static func linear<T: ReferenceFloat>(_ x: [T], weight: [T], rows: Int, inFeatures: Int, outFeatures: Int) -> [T] {
        var y = [T](repeating: 0, count: rows * outFeatures)
        for r in 0..<rows {
            for o in 0..<outFeatures {
                var sum: T = 0
                for i in 0..<inFeatures { sum += x[r * inFeatures + i] * weight[o * inFeatures + i] }
                y[r * outFeatures + o] = sum
            }
        }
        return y
    }

    /// a: [m, k], b: [k, n] → [m, n], the plain matrix product.
    public static func matmul<T: ReferenceFloat>(_ a: [T], _ b: [T], m: Int, k: Int, n: Int) -> [T] {
        var c = [T](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: T = 0
                for p in 0..<k { sum += a[i * k + p] * b[p * n + j] }
                c[i * n + j] = sum
            }
        }
        return c
    }

    /// ids: [rows], table: [vocab, dim] → [rows, dim].
    public static func embedding<T: ReferenceFloat>(_ ids: [Int], table: [T], dim: Int) -> [T] {
        var y: [T] = []
        for id in ids { y += table[(id * dim)..<((id + 1) * dim)] }
        return y
    }
}
