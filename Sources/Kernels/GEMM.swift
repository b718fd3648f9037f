import COpenBLAS

/// Row-major single-precision GEMM: `C = alpha · op(A) · op(B) + beta · C`, with `op(A)` of shape
/// `[m, k]`, `op(B)` `[k, n]` and `C` `[m, n]`. Leading dimensions are row strides in elements,
/// which is how heads inside a fused `[B, T, 3C]` buffer are reached without copies.
///
/// A thin, named wrapper over `cblas_sgemm`; when `m == 1` it calls a matrix–vector product
/// (``MatrixVector`` for `B` stored `[n, k]`, else `cblas_sgemv`), which streams the matrix
/// once instead of packing it.
public func sgemm(
    transposeA: Bool, transposeB: Bool,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    Threading.ensureConfigured()
    if m == 1 && !transposeA && transposeB {
        // c[1, n] = B[n, k] · a: the decode step's product.
        MatrixVector.multiply(w: b, ldw: ldb, x: a, y: c, rows: n, columns: k, alpha: alpha, beta: beta)
        return
    }
    if m == 1 && !transposeA {
        // c[1, n] = a[1, k] · op(B): a matrix–vector product with op(B)ᵀ.
        // op(B) = Bᵀ (B stored [n, k]) → y = B · a; op(B) = B (stored [k, n]) → y = Bᵀ · a.
        cblas_sgemv(
            CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans,
            transposeB ? Int32(n) : Int32(k), transposeB ? Int32(k) : Int32(n),
            alpha, b, Int32(ldb), a, 1, beta, c, 1)
        return
    }
    cblas_sgemm(
        CblasRowMajor,
        transposeA ? CblasTrans : CblasNoTrans,
        transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k),
        alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
