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

    /// silu(x) and silu'(x) = σ(x) · (1 + x · (1 − σ(x))) from one sigmoid: the derivative
    /// this backward and SwiGLU's share.
    @inline(__always)
    static func valueAndDerivative(_ x: Float) -> (value: Float, derivative: Float) {
        let s = VectorMath.sigmoid(x)
        return (x * s, s * (1 + x * (1 - s)))
    }

    /// dy, x: [count] → dx += dy · silu'(x).
    public static func backward(
        dy: UnsafeBufferPointer<Float>, x: UnsafeBufferPointer<Float>, dx: UnsafeMutableBufferPointer<Float>
    ) {
        requireShape(x, [dy.count], "SiLU.backward", "x")
        requireShape(dx, [dy.count], "SiLU.backward", "dx")
        let count = dy.count
        guard count > 0 else { return }
        let dy = dy.baseAddress!, x = x.baseAddress!, dx = dx.baseAddress!
        Threading.parallelRanges(count, costPerItem: 20) { range in
            for i in range { dx[i] += dy[i] * valueAndDerivative(x[i]).derivative }
        }
    }
}
