import CVectorKernels
import Foundation
import Synchronization

/// Causal attention that never forms the `[Tq, Tk]` probability matrix (FlashAttention-2's
/// scheme): queries in blocks meet keys in tiles, and an online softmax keeps a running maximum
/// `m` and sum `l` per row, rescaling the partial output as the maximum grows. The forward saves
/// only each row's log-sum-exp `L = m + log l`; the backward recomputes every tile's
/// probabilities `P = exp(scale · Q·Kᵀ − L)` from Q, K and L.
///
/// Two implementations of the tile loop:
/// - **Hand-vectorised** (AVX2+FMA, head sizes a multiple of 16 up to 256, chosen at run time):
///   `CVectorKernels/flash_attention.c`. A block of 192 query rows is held transposed, so the
///   vector lanes are query rows and the whole online softmax runs across lanes, fused with the
///   products; each head's keys and values are packed once per thread. Why not `cblas_sgemm` per
///   tile: with an inner dimension of 32–64, OpenBLAS spends as long packing and scaling as
///   multiplying (the README's "Long contexts" has the profile).
/// - **On `cblas_sgemm`** everywhere else: queries in blocks of ``queryBlock`` rows, keys in
///   blocks of ``keyBlock``, each tile's `Q·Kᵀ` and `P·V` one GEMM.
///
/// Memory: the standard kernel (``ScaledDotProductAttention``) keeps `B·H·Tq·Tk` probabilities
/// per layer for backward and as much scratch again; this one keeps `B·H·Tq` floats, plus a
/// workspace per thread of a few tiles and one head's packed keys, values and their gradients
/// (``workspaceCount(keyLength:headDim:threads:)``): O(T).
///
/// Same conventions as the standard kernel: operands as (column) views, grouped-query heads,
/// causal queries at `queryOffset…` over keys `0..<Tk` (a KV cache's prefill), gradients
/// accumulated (`beta = 1`).
public enum FlashAttention {
    /// Query rows per tile of the GEMM path.
    public static let queryBlock = 128
    /// Keys per tile of the GEMM path.
    public static let keyBlock = 256

    private static let handKernelsEnabled = Atomic<Bool>(true)

    /// Whether heads the hand-vectorised tiles take (see the type's notes) run on them; when
    /// false, every call runs the GEMM path (tests compare the two). On by default.
    public static var usesHandKernels: Bool {
        get { handKernelsEnabled.load(ordering: .relaxed) }
        set { handKernelsEnabled.store(newValue, ordering: .relaxed) }
    }

    /// Whether a call with heads of `headDim` runs the hand-vectorised tiles on this CPU.
    public static func runsHandKernels(headDim: Int) -> Bool {
        usesHandKernels && lm_flash_attention_available(headDim) == 1
    }

    /// Floats of workspace one thread needs for `keyLength` keys in heads of `headDim`: the
    /// GEMM path's score and gradient tiles, or the hand-vectorised path's tiles plus one head's
    /// packed K, V, dK and dV (`4 · keyLength · headDim`), whichever is larger.
    public static func workspacePerThread(keyLength: Int, headDim: Int) -> Int {
        let gemmTiles = 2 * queryBlock * keyBlock + 2 * queryBlock
        guard lm_flash_attention_available(headDim) == 1 else { return gemmTiles }
        return max(gemmTiles, lm_flash_attention_workspace() + 4 * keyLength * headDim)
    }

    /// Workspace for a call over `keyLength` keys in heads of `headDim` on `threads` threads
    /// (default: ``Threading/count``).
    public static func workspaceCount(keyLength: Int, headDim: Int, threads: Int = Threading.count) -> Int {
        max(1, threads) * workspacePerThread(keyLength: keyLength, headDim: headDim)
    }

    /// q: [B·Tq, H·d]; k, v: [B·Tk, Hkv·d] → out: [B·Tq, H·d]; saves logSumExp: [B·H·Tq] for
    /// backward; workspace: ``workspaceCount(keyLength:headDim:threads:)`` floats. Query row `t`
    /// sees keys `0...queryOffset + t`. `scale` defaults to 1/√d.
    public static func forward(
        q: MatrixView, k: MatrixView, v: MatrixView, out: MatrixView,
        logSumExp: UnsafeMutableBufferPointer<Float>, workspace: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims, queryOffset: Int = 0, scale: Float? = nil
    ) {
        let kernel = "FlashAttention.forward"
        AttentionOperands.requireQueries(q, dims, kernel, "q")
        AttentionOperands.requireKeys(k, dims, kernel, "k")
        AttentionOperands.requireKeys(v, dims, kernel, "v")
        AttentionOperands.requireQueries(out, dims, kernel, "out")
        AttentionOperands.requireSameStride(k, v, kernel, "k and v")
        forward(q: q.base, queryLayout: AttentionOperands.queryLayout(q, dims),
                k: k.base, v: v.base, keyLayout: AttentionOperands.keyLayout(k, dims),
                out: out.base, outputLayout: AttentionOperands.queryLayout(out, dims),
                logSumExp: logSumExp, workspace: workspace, dims: dims, queryOffset: queryOffset, scale: scale)
    }

    /// The gradients of ``forward(q:k:v:out:logSumExp:workspace:dims:queryOffset:scale:)``.
    ///
    /// q, k, v, out and logSumExp as the forward used and saved them; dOut: [B·Tq, H·d].
    /// Accumulates into dQ: [B·Tq, H·d] and dK, dV: [B·Tk, Hkv·d].
    /// Per tile: P = exp(S − L), dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − D) with
    /// D = rowsum(dO ⊙ O), dQ += scale · dS·K, dK += scale · dSᵀ·Q. Heads sharing a key/value
    /// head run on one thread, so no two threads add into the same dK or dV.
    public static func backward(
        q: MatrixView, k: MatrixView, v: MatrixView, out: MatrixView, dOut: MatrixView,
        logSumExp: UnsafeMutableBufferPointer<Float>,
        dQ: MatrixView, dK: MatrixView, dV: MatrixView, workspace: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims, queryOffset: Int = 0, scale: Float? = nil
    ) {
        let kernel = "FlashAttention.backward"
        AttentionOperands.requireQueries(q, dims, kernel, "q")
        AttentionOperands.requireQueries(out, dims, kernel, "out")
        AttentionOperands.requireQueries(dOut, dims, kernel, "dOut")
        AttentionOperands.requireQueries(dQ, dims, kernel, "dQ")
        AttentionOperands.requireKeys(k, dims, kernel, "k")
        AttentionOperands.requireKeys(v, dims, kernel, "v")
        AttentionOperands.requireKeys(dK, dims, kernel, "dK")
        AttentionOperands.requireKeys(dV, dims, kernel, "dV")
        AttentionOperands.requireSameStride(q, dQ, kernel, "q and dQ")
        AttentionOperands.requireSameStride(out, dOut, kernel, "out and dOut")
        AttentionOperands.requireSameStride(k, v, kernel, "k and v")
        AttentionOperands.requireSameStride(k, dK, kernel, "k and dK")
        AttentionOperands.requireSameStride(k, dV, kernel, "k and dV")
        backward(q: q.base, queryLayout: AttentionOperands.queryLayout(q, dims),
                 k: k.base, v: v.base, keyLayout: AttentionOperands.keyLayout(k, dims),
                 out: out.base, dOut: dOut.base, outputLayout: AttentionOperands.queryLayout(out, dims),
                 logSumExp: UnsafeBufferPointer(logSumExp), dQ: dQ.base, dK: dK.base, dV: dV.base,
                 workspace: workspace, dims: dims, queryOffset: queryOffset, scale: scale)
    }

    /// The tile loops of the view-based forward above, on head layouts.
    static func forward(
        q: UnsafePointer<Float>, queryLayout: HeadLayout,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyLayout: HeadLayout,
        out: UnsafeMutablePointer<Float>, outputLayout: HeadLayout,
        logSumExp: UnsafeMutableBufferPointer<Float>, workspace: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims, queryOffset: Int = 0, scale: Float? = nil
    ) {
        let call = Call(dims: dims, queryOffset: queryOffset, scale: scale, workspace: workspace, logSumExp: logSumExp.count,
                        layouts: (queryLayout, keyLayout, outputLayout), "FlashAttention.forward")
        if runsHandKernels(headDim: dims.headDim) {
            return call.forwardByHand(q: q, queryLayout: queryLayout, k: k, v: v, keyLayout: keyLayout,
                                      out: out, outputLayout: outputLayout, logSumExp: logSumExp.baseAddress!)
        }
        let lse = logSumExp.baseAddress!
        // One task per (batch, head) pair; each writes only its own output columns and rows of L.
        call.run(items: dims.batch * dims.heads) { pair, tile in
            let (b, h) = pair.quotientAndRemainder(dividingBy: dims.heads)
            let kvHead = h / (dims.heads / dims.kvHeads)
            let (d, qStride, kStride, oStride) = (dims.headDim, queryLayout.rowStride, keyLayout.rowStride, outputLayout.rowStride)
            let qh = q + b * queryLayout.batchStride + h * d, oh = out + b * outputLayout.batchStride + h * d
            let kh = k + b * keyLayout.batchStride + kvHead * d, vh = v + b * keyLayout.batchStride + kvHead * d
            let scores = tile, maxima = tile + 2 * queryBlock * keyBlock, sums = maxima + queryBlock
            var first = 0
            while first < dims.queryLength {
                let rows = min(queryBlock, dims.queryLength - first)
                let visible = call.visibleKeys(first: first, rows: rows)
                maxima.update(repeating: -.infinity, count: rows)
                sums.update(repeating: 0, count: rows)
                var key = 0
                while key < visible {
                    let keys = min(keyBlock, visible - key)
                    // S = scale · Q_B · K_Jᵀ
                    sgemm(transposeA: false, transposeB: true, m: rows, n: keys, k: d, alpha: call.alpha,
                          a: qh + first * qStride, lda: qStride, b: kh + key * kStride, ldb: kStride, c: scores, ldc: keyBlock)
                    for r in 0..<rows {
                        let row = scores + r * keyBlock
                        let seen = call.seenInTile(queryRow: first + r, key: key, keys: keys)
                        let tileMax = seen > 0 ? VectorMath.maximum(row, seen) : -.infinity
                        let newMax = max(maxima[r], tileMax)
                        // Rescale what this row has accumulated so far to the new maximum.
                        let correction = maxima[r] == -.infinity ? 0 : VectorMath.exp(maxima[r] - newMax)
                        let sum = VectorMath.exponentiate(row, into: row, count: seen, minus: newMax)
                        if seen < keys { (row + seen).update(repeating: 0, count: keys - seen) }
                        sums[r] = sums[r] * correction + sum
                        maxima[r] = newMax
                        let outRow = oh + (first + r) * oStride
                        if key == 0 { outRow.update(repeating: 0, count: d) } else if correction != 1 {
                            for c in 0..<d { outRow[c] *= correction }
                        }
                    }
                    // O_B += P · V_J
                    sgemm(transposeA: false, transposeB: false, m: rows, n: d, k: keys, a: scores, lda: keyBlock,
                          b: vh + key * kStride, ldb: kStride, beta: 1, c: oh + first * oStride, ldc: oStride)
                    key += keys
                }
                for r in 0..<rows {
                    let outRow = oh + (first + r) * oStride, inverse = 1 / sums[r]
                    for c in 0..<d { outRow[c] *= inverse }
                    lse[pair * dims.queryLength + first + r] = maxima[r] + Foundation.log(sums[r])
                }
                first += rows
            }
        }
    }

    /// The tile loops of the view-based backward above, on head layouts.
    static func backward(
        q: UnsafePointer<Float>, queryLayout: HeadLayout,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyLayout: HeadLayout,
        out: UnsafePointer<Float>, dOut: UnsafePointer<Float>, outputLayout: HeadLayout,
        logSumExp: UnsafeBufferPointer<Float>,
        dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>,
        workspace: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims, queryOffset: Int = 0, scale: Float? = nil
    ) {
        let call = Call(dims: dims, queryOffset: queryOffset, scale: scale, workspace: workspace, logSumExp: logSumExp.count,
                        layouts: (queryLayout, keyLayout, outputLayout), "FlashAttention.backward")
        if runsHandKernels(headDim: dims.headDim) {
            return call.backwardByHand(q: q, queryLayout: queryLayout, k: k, v: v, keyLayout: keyLayout,
                                       out: out, dOut: dOut, outputLayout: outputLayout, logSumExp: logSumExp.baseAddress!,
                                       dQ: dQ, dK: dK, dV: dV)
        }
        let lse = logSumExp.baseAddress!
        let group = dims.heads / dims.kvHeads
        call.run(items: dims.batch * dims.kvHeads) { index, tile in
            let (b, kvHead) = index.quotientAndRemainder(dividingBy: dims.kvHeads)
            let (d, qStride, kStride, oStride) = (dims.headDim, queryLayout.rowStride, keyLayout.rowStride, outputLayout.rowStride)
            let kh = k + b * keyLayout.batchStride + kvHead * d, vh = v + b * keyLayout.batchStride + kvHead * d
            let dKh = dK + b * keyLayout.batchStride + kvHead * d, dVh = dV + b * keyLayout.batchStride + kvHead * d
            let probabilities = tile, dS = tile + queryBlock * keyBlock, rowTerms = dS + queryBlock * keyBlock
            for h in (kvHead * group)..<((kvHead + 1) * group) {
                let pair = b * dims.heads + h
                let qh = q + b * queryLayout.batchStride + h * d, dQh = dQ + b * queryLayout.batchStride + h * d
                let oh = out + b * outputLayout.batchStride + h * d, dOh = dOut + b * outputLayout.batchStride + h * d
                var first = 0
                while first < dims.queryLength {
                    let rows = min(queryBlock, dims.queryLength - first)
                    let visible = call.visibleKeys(first: first, rows: rows)
                    // D = rowsum(dO ⊙ O): the softmax backward's inner product, per row.
                    for r in 0..<rows {
                        rowTerms[r] = VectorMath.dot(dOh + (first + r) * oStride, oh + (first + r) * oStride, d)
                    }
                    let qB = qh + first * qStride, dOB = dOh + first * oStride
                    var key = 0
                    while key < visible {
                        let keys = min(keyBlock, visible - key)
                        sgemm(transposeA: false, transposeB: true, m: rows, n: keys, k: d, alpha: call.alpha,
                              a: qB, lda: qStride, b: kh + key * kStride, ldb: kStride, c: probabilities, ldc: keyBlock)
                        for r in 0..<rows {
                            let row = probabilities + r * keyBlock, rowLSE = lse[pair * dims.queryLength + first + r]
                            let seen = call.seenInTile(queryRow: first + r, key: key, keys: keys)
                            _ = VectorMath.exponentiate(row, into: row, count: seen, minus: rowLSE)
                            if seen < keys { (row + seen).update(repeating: 0, count: keys - seen) }
                        }
                        // dV_J += Pᵀ · dO_B;  dP = dO_B · V_Jᵀ
                        sgemm(transposeA: true, transposeB: false, m: keys, n: d, k: rows, a: probabilities, lda: keyBlock,
                              b: dOB, ldb: oStride, beta: 1, c: dVh + key * kStride, ldc: kStride)
                        sgemm(transposeA: false, transposeB: true, m: rows, n: keys, k: d, a: dOB, lda: oStride,
                              b: vh + key * kStride, ldb: kStride, c: dS, ldc: keyBlock)
                        for r in 0..<rows {
                            let p = probabilities + r * keyBlock, g = dS + r * keyBlock, inner = rowTerms[r]
                            softmaxGradient(p, g, count: keys, inner: inner, scale: call.alpha)
                        }
                        // dQ_B += dS · K_J;  dK_J += dSᵀ · Q_B
                        sgemm(transposeA: false, transposeB: false, m: rows, n: d, k: keys, a: dS, lda: keyBlock,
                              b: kh + key * kStride, ldb: kStride, beta: 1, c: dQh + first * qStride, ldc: qStride)
                        sgemm(transposeA: true, transposeB: false, m: keys, n: d, k: rows, a: dS, lda: keyBlock,
                              b: qB, ldb: qStride, beta: 1, c: dKh + key * kStride, ldc: kStride)
                        key += keys
                    }
                    first += rows
                }
            }
        }
    }

    /// g[j] = p[j] · (g[j] − inner) · scale: the softmax backward on one row of a tile.
    @inline(__always)
    static func softmaxGradient(_ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, count: Int, inner: Float, scale: Float) {
        let lanesInner = SIMD16<Float>(repeating: inner), lanesScale = SIMD16<Float>(repeating: scale)
        var j = 0
        while j + 16 <= count {
            VectorMath.store(VectorMath.load(p + j) * (VectorMath.load(g + j) - lanesInner) * lanesScale, g + j)
            j += 16
        }
        while j < count {
            g[j] = p[j] * (g[j] - inner) * scale
            j += 1
        }
    }

    /// What both passes share: the checks, the causal geometry and the split over threads.
    struct Call {
        let dims: AttentionDims
        let queryOffset: Int
        let alpha: Float
        let workspace: UnsafeMutableBufferPointer<Float>

        init(dims: AttentionDims, queryOffset: Int, scale: Float?, workspace: UnsafeMutableBufferPointer<Float>, logSumExp: Int,
             layouts: (query: HeadLayout, key: HeadLayout, output: HeadLayout), _ kernel: String) {
            precondition(logSumExp == dims.batch * dims.heads * dims.queryLength,
                         "\(kernel): logSumExp has \(logSumExp) elements, expected [\(dims.batch), \(dims.heads), \(dims.queryLength)]")
            layouts.query.require(heads: dims.heads, headDim: dims.headDim, rows: dims.queryLength, batch: dims.batch, kernel, "q")
            layouts.key.require(heads: dims.kvHeads, headDim: dims.headDim, rows: dims.keyLength, batch: dims.batch, kernel, "k/v")
            layouts.output.require(heads: dims.heads, headDim: dims.headDim, rows: dims.queryLength, batch: dims.batch, kernel, "out")
            precondition(queryOffset >= 0 && queryOffset + dims.queryLength <= dims.keyLength,
                         "\(kernel): causal queries at \(queryOffset)..<\(queryOffset + dims.queryLength) need \(queryOffset + dims.queryLength) keys, have \(dims.keyLength)")
            let perThread = workspacePerThread(keyLength: dims.keyLength, headDim: dims.headDim)
            precondition(workspace.count >= perThread,
                         "\(kernel): workspace of \(workspace.count) floats, needs \(perThread) per thread for \(dims.keyLength) keys of head size \(dims.headDim)")
            self.dims = dims
            self.queryOffset = queryOffset
            self.alpha = scale ?? 1 / Float(dims.headDim).squareRoot()
            self.workspace = workspace
        }

        /// Keys any of query rows `first..<first + rows` can see.
        func visibleKeys(first: Int, rows: Int) -> Int { queryOffset + first + rows }

        /// How many of the tile's keys `key..<key + keys` query row `queryRow` sees.
        func seenInTile(queryRow: Int, key: Int, keys: Int) -> Int { min(keys, max(0, queryOffset + queryRow + 1 - key)) }

        /// Runs `body(item, tile)` for every item, spread over as many threads as the
        /// workspace has room for, each thread on its own part of it, with single-threaded GEMMs.
        func run(items: Int, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
            runTasks(items: items) { task, tasks, tile in
                let chunk = (items + tasks - 1) / tasks
                for item in (task * chunk)..<min(items, (task + 1) * chunk) { body(item, tile) }
            }
        }

        /// Runs `body(task, tasks, tile)` once per thread (`tasks` of them, at most `items`),
        /// each on its own part of the workspace, with single-threaded GEMMs.
        func runTasks(items: Int, _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
            let perThread = workspacePerThread(keyLength: dims.keyLength, headDim: dims.headDim)
            let tasks = max(1, min(items, Threading.count, workspace.count / perThread))
            let base = workspace.baseAddress!
            let cost = dims.queryLength * (queryOffset + dims.queryLength) * dims.headDim * 4
            Threading.withSingleThreadedBLAS {
                Threading.parallelRanges(tasks, costPerItem: cost * ((items + tasks - 1) / tasks)) { range in
                    for task in range { body(task, tasks, base + task * perThread) }
                }
            }
        }
    }
}
