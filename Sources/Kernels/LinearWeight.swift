/// The weight operand of ``Linear``: a matrix `[outFeatures, inFeatures]` that can multiply a batch
/// of input rows. A ``MatrixView`` of Float32 values is one; a block-quantized matrix is another
/// (its rows decoded as they are read), so a model holds whichever its file stored and every
/// caller of `Linear` stays the same.
///
/// Callers pass a weight as a generic argument (`some LinearWeight`), or as `any LinearWeight`
/// stored once: neither allocates per call.
public protocol LinearWeight {
    /// Rows of the weight: the layer's output width.
    var outFeatures: Int { get }
    /// Columns of the weight: the layer's input width.
    var inFeatures: Int { get }
    /// x: [rows, inFeatures] → y: [rows, outFeatures] = x · Wᵀ, added to `y` with `accumulate`.
    /// Shapes are checked by ``Linear/forward(x:weight:y:accumulate:)`` before this is called.
    func multiply(_ x: MatrixView, into y: MatrixView, accumulate: Bool)
    /// The weight as Float32 rows, when it is stored that way; training the weight itself needs it.
    var dense: MatrixView? { get }
    /// The backward of ``multiply(_:into:accumulate:)`` through the weight, which stays as it is:
    /// dy: [rows, outFeatures], x: [rows, inFeatures] (the forward's input) → dx += dy · W (when
    /// `dx` is given), and the gradients of whatever the weight trains of its own (a
    /// ``LoRAWeight``'s adapters). The gradient of a trained Float32 matrix itself is
    /// ``Linear/backward(dy:x:weight:dx:dWeight:)``'s.
    func backward(dy: MatrixView, x: MatrixView, dx: MatrixView?)
}

extension MatrixView: LinearWeight {
    public var outFeatures: Int { rows }
    public var inFeatures: Int { columns }
    public var dense: MatrixView? { self }

    /// One `cblas_sgemm(NoTrans, Trans)` (a matrix–vector product for one row).
    public func multiply(_ x: MatrixView, into y: MatrixView, accumulate: Bool) {
        guard x.rows > 0 else { return }
        sgemm(transposeA: false, transposeB: true, m: x.rows, n: rows, k: columns,
              a: x.base, lda: x.rowStride, b: base, ldb: rowStride,
              beta: accumulate ? 1 : 0, c: y.base, ldc: y.rowStride)
    }

    /// dx += dy · W: one `cblas_sgemm(NoTrans, NoTrans)`.
    public func backward(dy: MatrixView, x: MatrixView, dx: MatrixView?) {
        guard let dx, dy.rows > 0 else { return }
        sgemm(transposeA: false, transposeB: false, m: dy.rows, n: columns, k: rows,
              a: dy.base, lda: dy.rowStride, b: base, ldb: rowStride, beta: 1, c: dx.base, ldc: dx.rowStride)
    }
}
