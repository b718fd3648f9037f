/// A bias-free linear layer `y = x · Wᵀ` with the weight stored `[out, in]` (PyTorch's layout).
public enum Linear {
    /// x: [rows, inFeatures], weight: [outFeatures, inFeatures] → y: [rows, outFeatures].
    ///
    /// With `accumulate` the product is added to `y` instead of overwriting it (a residual add
    /// for free). Nothing needs saving for backward: it reads `x` and `weight` again.
    public static func forward(
        x: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
        y: UnsafeMutableBufferPointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool = false
    ) {
        requireShape(x, [rows, inFeatures], "Linear.forward", "x")
        requireShape(weight, [outFeatures, inFeatures], "Linear.forward", "weight")
        requireShape(y, [rows, outFeatures], "Linear.forward", "y")
        guard rows > 0 else { return }
        sgemm(transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures,
              a: x.baseAddress!, lda: inFeatures, b: weight.baseAddress!, ldb: inFeatures,
              beta: accumulate ? 1 : 0, c: y.baseAddress!, ldc: outFeatures)
    }

    /// dy: [rows, out], x: [rows, in], weight: [out, in] → dx += dy · W, dWeight += dyᵀ · x.
    ///
    /// Both gradients accumulate (beta = 1), so the caller zeroes them once per step.
    public static func backward(
        dy: UnsafeBufferPointer<Float>, x: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
        dx: UnsafeMutableBufferPointer<Float>?, dWeight: UnsafeMutableBufferPointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int
    ) {
        requireShape(dy, [rows, outFeatures], "Linear.backward", "dy")
        requireShape(x, [rows, inFeatures], "Linear.backward", "x")
        requireShape(weight, [outFeatures, inFeatures], "Linear.backward", "weight")
        requireShape(dWeight, [outFeatures, inFeatures], "Linear.backward", "dWeight")
        guard rows > 0 else { return }
        if let dx {
            requireShape(dx, [rows, inFeatures], "Linear.backward", "dx")
            sgemm(transposeA: false, transposeB: false, m: rows, n: inFeatures, k: outFeatures,
                  a: dy.baseAddress!, lda: outFeatures, b: weight.baseAddress!, ldb: inFeatures,
                  beta: 1, c: dx.baseAddress!, ldc: inFeatures)
        }
        sgemm(transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: rows,
              a: dy.baseAddress!, lda: outFeatures, b: x.baseAddress!, ldb: inFeatures,
              beta: 1, c: dWeight.baseAddress!, ldc: inFeatures)
    }
}
