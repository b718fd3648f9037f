/// A bias-free linear layer `y = x · Wᵀ` with the weight stored `[out, in]` (PyTorch's layout).
public enum Linear {
    /// x: [rows, in], weight: [out, in] → y: [rows, out].
    ///
    /// With `accumulate` the product is added to `y` instead of overwriting it (a residual add
    /// for free). Nothing needs saving for backward: it reads `x` and `weight` again. Views may be
    /// strided (heads of a fused buffer).
    public static func forward(x: MatrixView, weight: some LinearWeight, y: MatrixView, accumulate: Bool = false) {
        requireShape(x, x.rows, weight.inFeatures, "Linear.forward", "x")
        requireShape(y, x.rows, weight.outFeatures, "Linear.forward", "y")
        weight.multiply(x, into: y, accumulate: accumulate)
    }

    /// dy: [rows, out], x: [rows, in], weight: [out, in] (Float32) → dx += dy · W, dWeight += dyᵀ · x.
    ///
    /// Both gradients accumulate (beta = 1), so the caller zeroes them once per step. A weight
    /// without Float32 rows (quantized) cannot be trained: a programming error here.
    public static func backward(dy: MatrixView, x: MatrixView, weight: some LinearWeight, dx: MatrixView?, dWeight: MatrixView) {
        guard let w = weight.dense else { preconditionFailure("Linear.backward: the weight has no Float32 rows (it is quantized)") }
        let rows = dy.rows
        requireShape(dy, rows, w.rows, "Linear.backward", "dy")
        requireShape(x, rows, w.columns, "Linear.backward", "x")
        requireShape(dWeight, like: w, "Linear.backward", "dWeight")
        guard rows > 0 else { return }
        if let dx {
            requireShape(dx, rows, w.columns, "Linear.backward", "dx")
            sgemm(transposeA: false, transposeB: false, m: rows, n: w.columns, k: w.rows,
                  a: dy.base, lda: dy.rowStride, b: w.base, ldb: w.rowStride, beta: 1, c: dx.base, ldc: dx.rowStride)
        }
        sgemm(transposeA: true, transposeB: false, m: w.rows, n: w.columns, k: rows,
              a: dy.base, lda: dy.rowStride, b: x.base, ldb: x.rowStride, beta: 1, c: dWeight.base, ldc: dWeight.rowStride)
    }
}
