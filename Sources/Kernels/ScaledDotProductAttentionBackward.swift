extension ScaledDotProductAttention {
    /// The gradients of ``forward(q:queryLayout:k:v:keyLayout:out:outputLayout:probs:dims:mask:scale:)``.
    ///
    /// q, k, v: the forward's inputs at the same layouts; probs: [B, H, Tq, Tk] as saved by the
    /// forward (zeros where masked, so masked scores get no gradient); dOut: gradient of the output
    /// at `outputLayout`; scratch: [B, H, Tq, Tk] workspace. Accumulates (beta = 1) into dQ at
    /// `queryLayout` and dK, dV at `keyLayout`: the caller zeroes them once per step.
    ///
    /// Per head: dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale, dQ += dS·K,
    /// dK += dSᵀ·Q. Heads sharing a key/value head (grouped-query) run on the same thread, so no
    /// two threads add into the same dK or dV.
    public static func backward(
        q: UnsafePointer<Float>, queryLayout: HeadLayout,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyLayout: HeadLayout,
        probs: UnsafeBufferPointer<Float>,
        dOut: UnsafePointer<Float>, outputLayout: HeadLayout,
        dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims, scale: Float? = nil
    ) {
        let (tq, tk, d) = (dims.queryLength, dims.keyLength, dims.headDim)
        requireShape(probs, [dims.batch, dims.heads, tq, tk], "ScaledDotProductAttention.backward", "probs")
        requireShape(scratch, [dims.batch, dims.heads, tq, tk], "ScaledDotProductAttention.backward", "scratch")
        let alpha = scale ?? 1 / Float(d).squareRoot()
        let group = dims.heads / dims.kvHeads
        let groups = dims.batch * dims.kvHeads
        let probsBase = probs.baseAddress!, scratchBase = scratch.baseAddress!

        func backwardGroup(_ index: Int) {
            let (b, kvHead) = index.quotientAndRemainder(dividingBy: dims.kvHeads)
            let kh = k + b * keyLayout.batchStride + kvHead * d, vh = v + b * keyLayout.batchStride + kvHead * d
            let dKh = dK + b * keyLayout.batchStride + kvHead * d, dVh = dV + b * keyLayout.batchStride + kvHead * d
            for h in (kvHead * group)..<((kvHead + 1) * group) {
                let pair = b * dims.heads + h
                let p = probsBase + pair * tq * tk, dS = scratchBase + pair * tq * tk
                let qh = q + b * queryLayout.batchStride + h * d, dQh = dQ + b * queryLayout.batchStride + h * d
                let dOh = dOut + b * outputLayout.batchStride + h * d
                // dV += Pᵀ · dO
                sgemm(transposeA: true, transposeB: false, m: tk, n: d, k: tq, a: p, lda: tk,
                      b: dOh, ldb: outputLayout.rowStride, beta: 1, c: dVh, ldc: keyLayout.rowStride)
                // dP = dO · Vᵀ
                sgemm(transposeA: false, transposeB: true, m: tq, n: tk, k: d, a: dOh, lda: outputLayout.rowStride,
                      b: vh, ldb: keyLayout.rowStride, c: dS, ldc: tk)
                // dS = P ⊙ (dP − Σ dP ⊙ P) · scale, row by row (the softmax backward).
                for row in 0..<tq {
                    let pRow = p + row * tk, dRow = dS + row * tk
                    let inner = VectorMath.dot(UnsafePointer(dRow), pRow, tk)
                    for j in 0..<tk { dRow[j] = pRow[j] * (dRow[j] - inner) * alpha }
                }
                // dQ += dS · K;  dK += dSᵀ · Q
                sgemm(transposeA: false, transposeB: false, m: tq, n: d, k: tk, a: dS, lda: tk,
                      b: kh, ldb: keyLayout.rowStride, beta: 1, c: dQh, ldc: queryLayout.rowStride)
                sgemm(transposeA: true, transposeB: false, m: tk, n: d, k: tq, a: dS, lda: tk,
                      b: qh, ldb: queryLayout.rowStride, beta: 1, c: dKh, ldc: keyLayout.rowStride)
            }
        }
        if groups >= Threading.count && tq > 1 {
            Threading.withSingleThreadedBLAS {
                Threading.parallelRanges(groups, costPerItem: 8 * group * tq * tk * d) { range in
                    for index in range { backwardGroup(index) }
                }
            }
        } else {
            for index in 0..<groups { backwardGroup(index) }
        }
    }
}
