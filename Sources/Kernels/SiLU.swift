/// SiLU (swish) activation `silu(x) = x · σ(x)`.
public enum SiLU {
    /// x: [count] → y: [count]. Elementwise; `x` and `y` may be the same buffer.
    public static func forward(x: UnsafeBufferPointer<Float>, y: UnsafeMutableBufferPointer<Float>) {
        requireShape(y, [x.count], "SiLU.forward", "y")
        let count = x.count
        guard count > 0 else { return }
        let x = x.baseAddress!, y = y.baseAddress!
        Threading.parallelRanges(count, costPerItem: 20) { range in
            for i in range { y[i] = x[i] * VectorMath.sigmoid(x[i]) }
        }
    }

    /// dy, x: [count] → dx += dy · σ(x) · (1 + x · (1 − σ(x))).
    public static func backward(
        dy: UnsafeBufferPointer<Float>, x: UnsafeBufferPointer<Float>, dx: UnsafeMutableBufferPointer<Float>
    ) {
        requireShape(x, [dy.count], "SiLU.backward", "x")
        requireShape(dx, [dy.count], "SiLU.backward", "dx")
        let count = dy.count
        guard count > 0 else { return }
        let dy = dy.baseAddress!, x = x.baseAddress!, dx = dx.baseAddress!
        Threading.parallelRanges(count, costPerItem: 20) { range in
            for i in range {
                let s = VectorMath.sigmoid(x[i])
                dx[i] += dy[i] * s * (1 + x[i] * (1 - s))
            }
        }
    }
}
