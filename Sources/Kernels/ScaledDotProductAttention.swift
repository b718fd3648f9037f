import CVectorKernels
import Foundation

/// Sizes of one attention call. Grouped-query attention when `kvHeads < heads`: query head `h`
/// reads key/value head `h / (heads / kvHeads)`.
public struct AttentionDims: Sendable, Equatable {
    public var batch: Int
    public var queryLength: Int
    public var keyLength: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int

    public init(batch: Int, queryLength: Int, keyLength: Int, heads: Int, kvHeads: Int, headDim: Int) {
        precondition(batch >= 1 && queryLength >= 1 && keyLength >= 1 && headDim >= 1,
                     "AttentionDims: sizes must be positive (batch \(batch), queries \(queryLength), keys \(keyLength), head size \(headDim))")
        precondition(heads >= 1 && kvHeads >= 1 && heads % kvHeads == 0,
                     "AttentionDims: \(heads) query heads are not a multiple of \(kvHeads) key/value heads")
        (self.batch, self.queryLength, self.keyLength) = (batch, queryLength, keyLength)
        (self.heads, self.kvHeads, self.headDim) = (heads, kvHeads, headDim)
    }
}

/// Where the heads of one operand live, as the strided loops read them: row `t` of batch `b` starts
/// at `base + b · batchStride + t · rowStride`, and head `h` at column `h · headDim` of that row.
/// Made from a ``MatrixView`` of `[B·T, heads·headDim]` (a column view of a fused projection, a KV
/// cache's rows) by ``AttentionOperands``.
struct HeadLayout: Sendable {
    var rowStride: Int
    var batchStride: Int
    init(rowStride: Int, batchStride: Int) {
        self.rowStride = rowStride
        self.batchStride = batchStride
    }

    /// The layout of `view`, whose rows are `rowsPerBatch` rows of each batch in turn.
    init(_ view: MatrixView, rowsPerBatch: Int) {
        self.init(rowStride: view.rowStride, batchStride: rowsPerBatch * view.rowStride)
    }

    /// Stops unless `heads` heads of `headDim` fit in a row and, with several batches, `rows`
    /// rows fit in a batch: the extent the strided kernels will touch.
    func require(heads: Int, headDim: Int, rows: Int, batch: Int, _ kernel: String, _ name: String) {
        precondition(rowStride >= heads * headDim,
                     "\(kernel): \(name) row stride \(rowStride) is shorter than \(heads) heads × \(headDim)")
        precondition(batch == 1 || batchStride >= rows * rowStride,
                     "\(kernel): \(name) batch stride \(batchStride) is shorter than \(rows) rows × \(rowStride)")
    }
}

/// The shape rule every attention kernel checks on its operands: q and out (and their gradients)
/// are `[B·Tq, H·d]`, k and v (and theirs) `[B·Tk, Hkv·d]`; each may be a column view of a wider
/// buffer.
enum AttentionOperands {
    static func requireQueries(_ view: MatrixView, _ dims: AttentionDims, _ kernel: String, _ name: String) {
        requireShape(view, dims.batch * dims.queryLength, dims.heads * dims.headDim, kernel, name)
    }

    static func requireKeys(_ view: MatrixView, _ dims: AttentionDims, _ kernel: String, _ name: String) {
        requireShape(view, dims.batch * dims.keyLength, dims.kvHeads * dims.headDim, kernel, name)
    }

    /// The strided loops address both views with one row stride.
    static func requireSameStride(_ a: MatrixView, _ b: MatrixView, _ kernel: String, _ names: String) {
        requireMatch(a.rowStride, b.rowStride, kernel, "\(names) must share a row stride, got \(a.rowStride) and \(b.rowStride)")
    }

    static func queryLayout(_ view: MatrixView, _ dims: AttentionDims) -> HeadLayout { HeadLayout(view, rowsPerBatch: dims.queryLength) }
    static func keyLayout(_ view: MatrixView, _ dims: AttentionDims) -> HeadLayout { HeadLayout(view, rowsPerBatch: dims.keyLength) }
}

/// softmax(Q·Kᵀ / √d + mask) · V per batch and head, each product one `cblas_sgemm` on strided heads.
public enum ScaledDotProductAttention {
    /// Causal attention works on blocks of this many query rows, each multiplying only against
    /// the keys its last row can see: about half the FLOPs of the full square at T = 256.
    public static let causalBlockRows = 64

    /// q: [B·Tq, H·d]; k, v: [B·Tk, Hkv·d] → out: [B·Tq, H·d]; saves probs: [B·H·Tq, Tk] (zeros
    /// where masked) for backward. Each operand may be a column view of a wider buffer (the fused
    /// QKV projection, a KV cache). `scale` defaults to 1/√d.
    public static func forward(
        q: MatrixView, k: MatrixView, v: MatrixView, out: MatrixView, probs: MatrixView,
        dims: AttentionDims, mask: AttentionMask, scale: Float? = nil
    ) {
        let kernel = "ScaledDotProductAttention.forward"
        AttentionOperands.requireQueries(q, dims, kernel, "q")
        AttentionOperands.requireKeys(k, dims, kernel, "k")
        AttentionOperands.requireKeys(v, dims, kernel, "v")
        AttentionOperands.requireQueries(out, dims, kernel, "out")
        requireShape(probs, dims.batch * dims.heads * dims.queryLength, dims.keyLength, kernel, "probs")
        requireContiguous(probs, kernel, "probs")
        AttentionOperands.requireSameStride(k, v, kernel, "k and v")
        forward(q: q.base, queryLayout: AttentionOperands.queryLayout(q, dims),
                k: k.base, v: v.base, keyLayout: AttentionOperands.keyLayout(k, dims),
                out: out.base, outputLayout: AttentionOperands.queryLayout(out, dims),
                probs: probs.elements, dims: dims, mask: mask, scale: scale)
    }

    /// The strided loops of the view-based forward above, on head layouts.
    static func forward(
        q: UnsafePointer<Float>, queryLayout: HeadLayout,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyLayout: HeadLayout,
        out: UnsafeMutablePointer<Float>, outputLayout: HeadLayout,
        probs: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims, mask: AttentionMask, scale: Float? = nil
    ) {
        let (tq, tk, d) = (dims.queryLength, dims.keyLength, dims.headDim)
        requireShape(probs, [dims.batch, dims.heads, tq, tk], "ScaledDotProductAttention.forward", "probs")
        let kernel = "ScaledDotProductAttention.forward"
        queryLayout.require(heads: dims.heads, headDim: d, rows: tq, batch: dims.batch, kernel, "q")
        keyLayout.require(heads: dims.kvHeads, headDim: d, rows: tk, batch: dims.batch, kernel, "k/v")
        outputLayout.require(heads: dims.heads, headDim: d, rows: tq, batch: dims.batch, kernel, "out")
        if case .allowed(let allowed) = mask {
            requireShape(allowed, [tq, tk], "ScaledDotProductAttention.forward", "mask")
        }
        if let offset = mask.causalOffset {
            precondition(offset >= 0 && offset + tq <= tk,
                         "ScaledDotProductAttention.forward: causal queries at \(offset)..<\(offset + tq) need \(offset + tq) keys, have \(tk)")
        }
        if case .slidingWindow(_, let window) = mask {
            precondition(window >= 1, "ScaledDotProductAttention.forward: sliding window \(window) must be positive")
        }
        let alpha = scale ?? 1 / Float(d).squareRoot()
        let group = dims.heads / dims.kvHeads
        let pairs = dims.batch * dims.heads
        let probsBase = probs.baseAddress!
        if tq == 1, lm_decode_attention_available(d) == 1, mask.seesEveryKey(ofOneQueryOver: tk) {
            decodeStep(q: q, queryLayout: queryLayout, k: k, v: v, keyLayout: keyLayout, out: out, outputLayout: outputLayout,
                       probs: probsBase, dims: dims, alpha: alpha)
            return
        }
        func attend(_ pair: Int) {
            let (b, h) = pair.quotientAndRemainder(dividingBy: dims.heads)
            let kvHead = h / group
            attendOneHead(
                q: q + b * queryLayout.batchStride + h * d, queryStride: queryLayout.rowStride,
                k: k + b * keyLayout.batchStride + kvHead * d, v: v + b * keyLayout.batchStride + kvHead * d,
                keyStride: keyLayout.rowStride,
                out: out + b * outputLayout.batchStride + h * d, outStride: outputLayout.rowStride,
                probs: probsBase + pair * tq * tk, queries: tq, keys: tk, headDim: d, alpha: alpha, mask: mask)
        }
        // One owner of threads per loop: (batch, head) pairs go to our threads, each running
        // single-threaded GEMMs (every pair writes only its own probs and output columns). This
        // holds for a decode step too: its products are matrix–vectors over the cache, where
        // OpenBLAS would wake its own threads for each (and they would then spin beside ours);
        // `parallelRanges` runs short caches on the calling thread.
        if pairs >= Threading.count {
            Threading.withSingleThreadedBLAS {
                Threading.parallelRanges(pairs, costPerItem: 4 * tq * tk * d) { range in
                    for pair in range { attend(pair) }
                }
            }
        } else {
            for pair in 0..<pairs { attend(pair) }
        }
    }

    /// A decode step (one query row per head, every cached key visible): per key/value head,
    /// the scores of all its query heads in one pass over the keys, their softmax, then the
    /// values in one pass (`lm_attention_scores` and `lm_attention_values` in CVectorKernels),
    /// so grouped-query attention reads K and V once per step instead of once per query head.
    /// Threads take (batch, key/value head) pairs.
    static func decodeStep(
        q: UnsafePointer<Float>, queryLayout: HeadLayout, k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyLayout: HeadLayout,
        out: UnsafeMutablePointer<Float>, outputLayout: HeadLayout, probs: UnsafeMutablePointer<Float>, dims: AttentionDims, alpha: Float
    ) {
        let (tk, d, group) = (dims.keyLength, dims.headDim, dims.heads / dims.kvHeads)
        Threading.parallelRanges(dims.batch * dims.kvHeads, costPerItem: 4 * group * tk * d) { range in
            for pair in range {
                let (b, kvHead) = pair.quotientAndRemainder(dividingBy: dims.kvHeads)
                let firstHead = kvHead * group
                let scores = probs + (b * dims.heads + firstHead) * tk
                lm_attention_scores(q + b * queryLayout.batchStride + firstHead * d, group, d,
                                    k + b * keyLayout.batchStride + kvHead * d, keyLayout.rowStride, tk, alpha, scores, tk)
                for head in 0..<group { Softmax.softmaxRow(scores + head * tk, scores + head * tk, count: tk, visible: tk) }
                lm_attention_values(scores, tk, group, tk, v + b * keyLayout.batchStride + kvHead * d, keyLayout.rowStride, d,
                                    out + b * outputLayout.batchStride + firstHead * d, d)
            }
        }
    }

    /// One head: scores, masked softmax and values, in blocks of query rows when causal.
    static func attendOneHead(
        q: UnsafePointer<Float>, queryStride: Int,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyStride: Int,
        out: UnsafeMutablePointer<Float>, outStride: Int,
        probs: UnsafeMutablePointer<Float>, queries tq: Int, keys tk: Int, headDim d: Int, alpha: Float, mask: AttentionMask
    ) {
        let blockRows = mask.causalOffset == nil ? tq : causalBlockRows
        var first = 0
        while first < tq {
            let rows = min(blockRows, tq - first)
            // Keys any row of this block can see; softmax zeroes the rest of each probs row.
            let keys = mask.causalOffset.map { $0 + first + rows } ?? tk
            let pBlock = probs + first * tk
            sgemm(transposeA: false, transposeB: true, m: rows, n: keys, k: d, alpha: alpha,
                  a: q + first * queryStride, lda: queryStride, b: k, ldb: keyStride, c: pBlock, ldc: tk)
            for r in 0..<rows {
                let row = pBlock + r * tk
                switch mask {
                case .none:
                    Softmax.softmaxRow(row, row, count: tk, visible: tk)
                case .causal(let offset):
                    Softmax.softmaxRow(row, row, count: tk, visible: offset + first + r + 1)
                case .slidingWindow:
                    // Keys before the window get exactly 0, as the causal tail does.
                    let visible = mask.visibleKeys(row: first + r, keys: tk)
                    row.update(repeating: 0, count: visible.lowerBound)
                    Softmax.softmaxRow(row + visible.lowerBound, row + visible.lowerBound, count: tk - visible.lowerBound,
                                       visible: visible.count)
                case .allowed(let allowed):
                    Softmax.softmaxRow(row, row, count: tk, allowed: allowed.baseAddress! + (first + r) * tk)
                }
            }
            sgemm(transposeA: false, transposeB: false, m: rows, n: d, k: keys,
                  a: pBlock, lda: tk, b: v, ldb: keyStride, c: out + first * outStride, ldc: outStride)
            first += rows
        }
    }

    /// The gradients of ``forward(q:k:v:out:probs:dims:mask:scale:)``.
    ///
    /// q, k, v: the forward's inputs; probs: [B·H·Tq, Tk] as saved by the forward (zeros where
    /// masked, so masked scores get no gradient); dOut: [B·Tq, H·d]; scratch: [B·H·Tq, Tk]
    /// workspace. Accumulates (beta = 1) into dQ: [B·Tq, H·d] and dK, dV: [B·Tk, Hkv·d]: the caller
    /// zeroes them once per step. With a causal `mask` (the forward's), blocks of query rows
    /// multiply only against the keys they can see, as the forward does; any other mask runs the
    /// full square (the zeros in `probs` keep it exact).
    ///
    /// Per head: dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale, dQ += dS·K,
    /// dK += dSᵀ·Q. Heads sharing a key/value head (grouped-query) run on the same thread, so no
    /// two threads add into the same dK or dV.
    public static func backward(
        q: MatrixView, k: MatrixView, v: MatrixView, probs: MatrixView, dOut: MatrixView,
        dQ: MatrixView, dK: MatrixView, dV: MatrixView, scratch: MatrixView,
        dims: AttentionDims, mask: AttentionMask = .none, scale: Float? = nil
    ) {
        let kernel = "ScaledDotProductAttention.backward"
        AttentionOperands.requireQueries(q, dims, kernel, "q")
        AttentionOperands.requireQueries(dOut, dims, kernel, "dOut")
        AttentionOperands.requireQueries(dQ, dims, kernel, "dQ")
        AttentionOperands.requireKeys(k, dims, kernel, "k")
        AttentionOperands.requireKeys(v, dims, kernel, "v")
        AttentionOperands.requireKeys(dK, dims, kernel, "dK")
        AttentionOperands.requireKeys(dV, dims, kernel, "dV")
        let (rows, keys) = (dims.batch * dims.heads * dims.queryLength, dims.keyLength)
        requireShape(probs, rows, keys, kernel, "probs")
        requireShape(scratch, rows, keys, kernel, "scratch")
        requireContiguous(probs, kernel, "probs")
        requireContiguous(scratch, kernel, "scratch")
        AttentionOperands.requireSameStride(q, dQ, kernel, "q and dQ")
        AttentionOperands.requireSameStride(k, v, kernel, "k and v")
        AttentionOperands.requireSameStride(k, dK, kernel, "k and dK")
        AttentionOperands.requireSameStride(k, dV, kernel, "k and dV")
        backward(q: q.base, queryLayout: AttentionOperands.queryLayout(q, dims),
                 k: k.base, v: v.base, keyLayout: AttentionOperands.keyLayout(k, dims),
                 probs: UnsafeBufferPointer(probs.elements), dOut: dOut.base, outputLayout: AttentionOperands.queryLayout(dOut, dims),
                 dQ: dQ.base, dK: dK.base, dV: dV.base, scratch: scratch.elements, dims: dims, mask: mask, scale: scale)
    }

    /// The strided loops of the view-based backward above, on head layouts.
    static func backward(
        q: UnsafePointer<Float>, queryLayout: HeadLayout,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyLayout: HeadLayout,
        probs: UnsafeBufferPointer<Float>,
        dOut: UnsafePointer<Float>, outputLayout: HeadLayout,
        dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims, mask: AttentionMask = .none, scale: Float? = nil
    ) {
        let (tq, tk, d) = (dims.queryLength, dims.keyLength, dims.headDim)
        requireShape(probs, [dims.batch, dims.heads, tq, tk], "ScaledDotProductAttention.backward", "probs")
        requireShape(scratch, [dims.batch, dims.heads, tq, tk], "ScaledDotProductAttention.backward", "scratch")
        let kernel = "ScaledDotProductAttention.backward"
        queryLayout.require(heads: dims.heads, headDim: d, rows: tq, batch: dims.batch, kernel, "q")
        keyLayout.require(heads: dims.kvHeads, headDim: d, rows: tk, batch: dims.batch, kernel, "k/v")
        outputLayout.require(heads: dims.heads, headDim: d, rows: tq, batch: dims.batch, kernel, "dOut")
        // A sliding window's hidden keys have probability 0, so their gradients vanish in the
        // product below: the block loop only needs the causal bound.
        let causalOffset = mask.causalOffset
        if let offset = causalOffset {
            precondition(offset >= 0 && offset + tq <= tk, "\(kernel): causal queries at \(offset)..<\(offset + tq) need \(offset + tq) keys, have \(tk)")
        }
        let alpha = scale ?? 1 / Float(d).squareRoot()
        let group = dims.heads / dims.kvHeads
        let groups = dims.batch * dims.kvHeads
        let probsBase = probs.baseAddress!, scratchBase = scratch.baseAddress!
        let (qStride, kStride, oStride) = (queryLayout.rowStride, keyLayout.rowStride, outputLayout.rowStride)
        let blockRows = causalOffset == nil ? tq : causalBlockRows

        func backwardGroup(_ index: Int) {
            let (b, kvHead) = index.quotientAndRemainder(dividingBy: dims.kvHeads)
            let kh = k + b * keyLayout.batchStride + kvHead * d, vh = v + b * keyLayout.batchStride + kvHead * d
            let dKh = dK + b * keyLayout.batchStride + kvHead * d, dVh = dV + b * keyLayout.batchStride + kvHead * d
            for h in (kvHead * group)..<((kvHead + 1) * group) {
                let pair = b * dims.heads + h
                let p = probsBase + pair * tq * tk, dS = scratchBase + pair * tq * tk
                let qh = q + b * queryLayout.batchStride + h * d, dQh = dQ + b * queryLayout.batchStride + h * d
                let dOh = dOut + b * outputLayout.batchStride + h * d
                var first = 0
                while first < tq {
                    let rows = min(blockRows, tq - first)
                    // Keys this block's rows can see (all of them without a causal mask).
                    let keys = causalOffset.map { $0 + first + rows } ?? tk
                    let pB = p + first * tk, dSB = dS + first * tk, dOB = dOh + first * oStride
                    // dV[0..<keys] += P_Bᵀ · dO_B
                    sgemm(transposeA: true, transposeB: false, m: keys, n: d, k: rows, a: pB, lda: tk,
                          b: dOB, ldb: oStride, beta: 1, c: dVh, ldc: kStride)
                    // dP_B = dO_B · V[0..<keys]ᵀ
                    sgemm(transposeA: false, transposeB: true, m: rows, n: keys, k: d, a: dOB, lda: oStride,
                          b: vh, ldb: kStride, c: dSB, ldc: tk)
                    // dS = P ⊙ (dP − Σ dP ⊙ P) · scale, row by row (the softmax backward).
                    for row in 0..<rows {
                        let pRow = pB + row * tk, dRow = dSB + row * tk
                        let inner = VectorMath.dot(UnsafePointer(dRow), pRow, keys)
                        for j in 0..<keys { dRow[j] = pRow[j] * (dRow[j] - inner) * alpha }
                    }
                    // dQ_B += dS_B · K[0..<keys];  dK[0..<keys] += dS_Bᵀ · Q_B
                    sgemm(transposeA: false, transposeB: false, m: rows, n: d, k: keys, a: dSB, lda: tk,
                          b: kh, ldb: kStride, beta: 1, c: dQh + first * qStride, ldc: qStride)
                    sgemm(transposeA: true, transposeB: false, m: keys, n: d, k: rows, a: dSB, lda: tk,
                          b: qh + first * qStride, ldb: qStride, beta: 1, c: dKh, ldc: kStride)
                    first += rows
                }
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
