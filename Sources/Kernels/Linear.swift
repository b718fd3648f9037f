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

    /// dy: [rows, out], x: [rows, in], weight: [out, in] → dx += dy · W, dWeight += dyᵀ · x.
    ///
    /// Both gradients accumulate (beta = 1), so the caller zeroes them once per step. `dWeight`
    /// nil: the weight is frozen (any ``LinearWeight``: a quantized base under LoRA adapters,
    /// which train through ``LinearWeight/backward(dy:x:dx:)``); given, the weight must have
    /// Float32 rows (a programming error otherwise).
    public static func backward(dy: MatrixView, x: MatrixView, weight: some LinearWeight, dx: MatrixView?, dWeight: MatrixView?) {
        let rows = dy.rows
        requireShape(dy, rows, weight.outFeatures, "Linear.backward", "dy")
        requireShape(x, rows, weight.inFeatures, "Linear.backward", "x")
        if let dx { requireShape(dx, rows, weight.inFeatures, "Linear.backward", "dx") }
        guard rows > 0 else { return }
        weight.backward(dy: dy, x: x, dx: dx)
        guard let dWeight else { return }
        guard let w = weight.dense else { preconditionFailure("Linear.backward: the weight has no Float32 rows (it is quantized) to train") }
        requireShape(dWeight, like: w, "Linear.backward", "dWeight")
        sgemm(transposeA: true, transposeB: false, m: w.rows, n: w.columns, k: rows,
              a: dy.base, lda: dy.rowStride, b: x.base, ldb: x.rowStride, beta: 1, c: dWeight.base, ldc: dWeight.rowStride)
    }
}
