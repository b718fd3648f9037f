import Kernels

/// Causal multi-head self-attention with RoPE: fused QKV projection → RoPE on Q and K →
/// scaled dot-product attention over strided heads → output projection.
public enum CausalSelfAttention {
    /// Stacks wq: [H·d, C], wk: [Hkv·d, C], wv: [Hkv·d, C] into the fused QKV weight
    /// [(H + 2·Hkv)·d, C], so one GEMM yields rows laid out as `q | k | v`.
    public static func packQKV(q: [Float], k: [Float], v: [Float]) -> [Float] {
        precondition(k.count == v.count, "CausalSelfAttention.packQKV: k has \(k.count) elements, v has \(v.count)")
        return q + k + v
    }

    /// The fused projection's width `(H + 2·Hkv) · d`.
    public static func qkvWidth(_ dims: AttentionDims) -> Int {
        (dims.heads + 2 * dims.kvHeads) * dims.headDim
    }

    /// x: [B·T, C] with C = H·d; qkvWeight: [(H + 2·Hkv)·d, C]; outputWeight: [C, C] → y: [B·T, C],
    /// added to `y` with `accumulate` (the residual). Saves for backward: qkv: [B·T, qkvWidth] with
    /// RoPE applied to Q and K, what `saved`'s kernel keeps (probabilities [B·H·Tq, Tk], or
    /// log-sum-exps [B·H·Tq]), context: [B·T, C] (attention output before the output projection).
    ///
    /// `rope` rotates Q and K at each row's absolute position; without it attention has no
    /// positional signal of its own (a model that adds positions elsewhere). Without a cache,
    /// `dims.queryLength` must equal `dims.keyLength` (self-attention over the rows given). With
    /// `cache` ``KVCacheRows/sequence(_:)`` (batch 1), the rows' keys and values are written into
    /// the cache at `slot.start…` and the queries attend over every cached position up to their
    /// own: `dims.keyLength` must be `slot.start + dims.queryLength`. With
    /// ``KVCacheRows/streams(_:)`` (a batched decode step: `dims.batch` rows of one query each,
    /// `dims.keyLength` at least every stream's length), row `i`'s key and value go into
    /// `slots[i]` and its query attends over that cache alone; `saved`'s probabilities
    /// `[B·H, keyLength]` hold the scores.
    ///
    /// `variant` adds a family's biases, QK-norm (which keeps its rstd, and in training the
    /// pre-norm q | k, in `qkNorm`), sliding window and scale.
    public static func forward(
        x: MatrixView, qkvWeight: some LinearWeight, outputWeight: some LinearWeight, rope: RotaryPositions?,
        y: MatrixView, qkv: MatrixView, saved: AttentionMemory, context: MatrixView,
        dims: AttentionDims, accumulate: Bool = false, cache rows: KVCacheRows? = nil,
        variant: AttentionVariant = AttentionVariant(), qkNorm: QKNormMemory? = nil
    ) {
        if case .streams(let slots) = rows {
            return forwardStreams(x: x, qkvWeight: qkvWeight, outputWeight: outputWeight, rope: rope, y: y, qkv: qkv,
                                  saved: saved, context: context, dims: dims, accumulate: accumulate, slots: slots,
                                  variant: variant, qkNorm: qkNorm)
        }
        var cache: KVCacheSlot?
        if case .sequence(let slot) = rows { cache = slot }
        let kernel = "CausalSelfAttention.forward"
        let offset = cache?.start ?? 0
        requireMatch(offset + dims.queryLength, dims.keyLength, kernel,
                     "\(dims.queryLength) queries after \(offset) cached positions need \(offset + dims.queryLength) keys, got \(dims.keyLength)")
        let (q, k, v) = split(qkv, dims)
        project(x: x, qkvWeight: qkvWeight, qkv: qkv, dims: dims, variant: variant, qkNorm: qkNorm)
        if let rope {
            requireMatch(rope.table.headDim, dims.headDim, kernel,
                         "RoPE table head size \(rope.table.headDim) differs from the attention head size \(dims.headDim)")
            RoPE.apply(to: q, rope)
            RoPE.apply(to: k, rope)
        }
        var (keys, values) = (k, v)
        if let cache {
            precondition(dims.batch == 1, "\(kernel): a KV cache holds one sequence, got batch \(dims.batch)")
            precondition(cache.start + qkv.rows <= cache.capacity,
                         "\(kernel): \(qkv.rows) rows at position \(cache.start) overflow a cache of \(cache.capacity)")
            let written = cache.start..<(cache.start + qkv.rows)
            cache.keys.rows(written).copy(from: k)
            cache.values.rows(written).copy(from: v)
            // Keys before the window of the first query are never read (a sliding layer's
            // prefill after a long cache, or a decode step, reads the window alone).
            let first = variant.firstVisibleKey(queryOffset: offset)
            keys = cache.keys.rows(first..<dims.keyLength)
            values = cache.values.rows(first..<dims.keyLength)
            let seen = AttentionDims(batch: 1, queryLength: dims.queryLength, keyLength: dims.keyLength - first,
                                     heads: dims.heads, kvHeads: dims.kvHeads, headDim: dims.headDim)
            attend(q: q, keys: keys, values: values, context: context, saved: saved, dims: seen, queryOffset: offset - first, variant: variant)
        } else {
            attend(q: q, keys: keys, values: values, context: context, saved: saved, dims: dims, queryOffset: offset, variant: variant)
        }
        Linear.forward(x: context, weight: outputWeight, y: y, accumulate: accumulate)
    }

    /// Attention of the queries at `queryOffset…` over `dims.keyLength` keys, with the kernel `saved` names.
    private static func attend(q: MatrixView, keys: MatrixView, values: MatrixView, context: MatrixView, saved: AttentionMemory,
                               dims: AttentionDims, queryOffset: Int, variant: AttentionVariant) {
        switch saved {
        case .probabilities(let probs):
            // A window reads fewer keys than the probabilities were sized for: the same memory, narrower rows.
            let used = probs.columns == dims.keyLength ? probs : MatrixView(probs.base, rows: probs.rows, columns: dims.keyLength)
            ScaledDotProductAttention.forward(q: q, k: keys, v: values, out: context, probs: used,
                                              dims: dims, mask: variant.mask(queryOffset: queryOffset), scale: variant.scale)
        case .logSumExp(let logSumExp, let workspace):
            precondition(variant.window == nil, "CausalSelfAttention: the memory-efficient kernel has no sliding window; use the standard kernel")
            FlashAttention.forward(q: q, k: keys, v: values, out: context, logSumExp: logSumExp, workspace: workspace,
                                   dims: dims, queryOffset: queryOffset, scale: variant.scale)
        }
    }

    /// The fused projection with the variant's bias and QK-norm (before RoPE).
    private static func project(x: MatrixView, qkvWeight: some LinearWeight, qkv: MatrixView, dims: AttentionDims,
                                variant: AttentionVariant, qkNorm: QKNormMemory?) {
        Linear.forward(x: x, weight: qkvWeight, y: qkv)
        if let bias = variant.qkvBias { Bias.forward(bias: bias, y: qkv) }
        guard let queryNorm = variant.queryNorm, let keyNorm = variant.keyNorm else { return }
        guard let memory = qkNorm else { preconditionFailure("CausalSelfAttention: QK-norm needs its rstd memory") }
        let (rows, d, heads) = (qkv.rows, dims.headDim, dims.heads + dims.kvHeads)
        requireShape(memory.rstd, [heads * rows], "CausalSelfAttention", "qkNorm.rstd")
        let normed = qkv.columns(0..<(heads * d))
        if let raw = memory.raw { raw.copy(from: normed) }
        for head in 0..<heads {
            let columns = normed.columns((head * d)..<((head + 1) * d))
            RMSNorm.forward(x: columns, weight: head < dims.heads ? queryNorm : keyNorm, y: columns,
                            rstd: UnsafeMutableBufferPointer(rebasing: memory.rstd[(head * rows)..<((head + 1) * rows)]), epsilon: variant.normEpsilon)
        }
    }

    /// A batched decode step: row `i` of `x` is the next position of sequence `i`, whose keys
    /// and values go into `slots[i]` at its `start`; each query attends over its own cache.
    private static func forwardStreams(
        x: MatrixView, qkvWeight: some LinearWeight, outputWeight: some LinearWeight, rope: RotaryPositions?,
        y: MatrixView, qkv: MatrixView, saved: AttentionMemory, context: MatrixView,
        dims: AttentionDims, accumulate: Bool, slots: [KVCacheSlot], variant: AttentionVariant, qkNorm: QKNormMemory?
    ) {
        let kernel = "CausalSelfAttention.forward(streams)"
        precondition(dims.queryLength == 1 && dims.batch == slots.count, "\(kernel): \(slots.count) streams need batch \(slots.count) of one row, got \(dims.batch) × \(dims.queryLength)")
        guard case .probabilities(let scores) = saved else { preconditionFailure("\(kernel): a decode step keeps scores, not log-sum-exps") }
        requireShape(scores, dims.batch * dims.heads, dims.keyLength, kernel, "scores")
        let (q, k, v) = split(qkv, dims)
        project(x: x, qkvWeight: qkvWeight, qkv: qkv, dims: dims, variant: variant, qkNorm: qkNorm)
        if let rope {
            RoPE.apply(to: q, rope)
            RoPE.apply(to: k, rope)
        }
        for (row, slot) in slots.enumerated() {
            precondition(slot.start < slot.capacity && slot.start < dims.keyLength, "\(kernel): stream \(row) at position \(slot.start) overflows its cache of \(slot.capacity)")
            slot.keys.rows(slot.start..<(slot.start + 1)).copy(from: k.rows(row..<(row + 1)))
            slot.values.rows(slot.start..<(slot.start + 1)).copy(from: v.rows(row..<(row + 1)))
        }
        // Each stream reads the keys its query sees: all of them, or its window.
        let seen = slots.map { variant.firstVisibleKey(queryOffset: $0.start)..<($0.start + 1) }
        ScaledDotProductAttention.decodeStreams(q: q, keys: zip(slots, seen).map { $0.keys.rows($1) },
                                                values: zip(slots, seen).map { $0.values.rows($1) }, out: context,
                                                scores: scores.base, maxKeys: dims.keyLength,
                                                heads: dims.heads, kvHeads: dims.kvHeads, headDim: dims.headDim, scale: variant.scale)
        Linear.forward(x: context, weight: outputWeight, y: y, accumulate: accumulate)
    }

    /// The gradients of ``forward(x:qkvWeight:outputWeight:rope:y:qkv:saved:context:dims:accumulate:cache:variant:qkNorm:)``
    /// without a cache.
    ///
    /// dy: [B·T, C]; x, qkv, saved, context as the forward saved them. Workspaces, overwritten:
    /// dContext: [B·T, C], dQKV: [B·T, qkvWidth], scratch: [B·H·T, T] for the standard kernel
    /// (the memory-efficient one uses `saved`'s workspace; scratch is then not read). Accumulates
    /// into dx: [B·T, C], dQKVWeight: [(H + 2·Hkv)·d, C] and dOutputWeight: [C, C] (nil: frozen
    /// weights, as under LoRA adapters; the gains' and biases' gradients in `dVariant` are then
    /// nil too, and skipped).
    ///
    /// Output projection's backward → attention's backward into the fused dQ | dK | dV → RoPE's
    /// backward on dQ and dK → the QK-norm's backward (its gains' gradients into `dVariant`) →
    /// the bias's → the fused projection's backward. `dQKRaw` [B·T, (H + Hkv)·d] is QK-norm's workspace.
    public static func backward(
        dy: MatrixView, x: MatrixView, qkvWeight: some LinearWeight, outputWeight: some LinearWeight, rope: RotaryPositions?,
        qkv: MatrixView, saved: AttentionMemory, context: MatrixView,
        dContext: MatrixView, dQKV: MatrixView, scratch: MatrixView,
        dx: MatrixView, dQKVWeight: MatrixView?, dOutputWeight: MatrixView?, dims: AttentionDims,
        variant: AttentionVariant = AttentionVariant(), qkNorm: QKNormMemory? = nil, dVariant: AttentionVariant = AttentionVariant(),
        dQKRaw: MatrixView? = nil
    ) {
        requireMatch(dims.queryLength, dims.keyLength, "CausalSelfAttention.backward",
                     "self-attention needs as many keys as queries, got \(dims.queryLength) and \(dims.keyLength)")
        requireShape(dQKV, like: qkv, "CausalSelfAttention.backward", "dQKV")
        guard qkv.rows > 0 else { return }
        let (q, k, v) = split(qkv, dims), (dQ, dK, dV) = split(dQKV, dims)

        dContext.fill(0)
        Linear.backward(dy: dy, x: context, weight: outputWeight, dx: dContext, dWeight: dOutputWeight)
        dQKV.fill(0)
        switch saved {
        case .probabilities(let probs):
            ScaledDotProductAttention.backward(q: q, k: k, v: v, probs: probs, dOut: dContext, dQ: dQ, dK: dK, dV: dV,
                                               scratch: scratch, dims: dims, mask: variant.mask(queryOffset: 0), scale: variant.scale)
        case .logSumExp(let logSumExp, let workspace):
            precondition(variant.window == nil, "CausalSelfAttention.backward: the memory-efficient kernel has no sliding window")
            FlashAttention.backward(q: q, k: k, v: v, out: context, dOut: dContext, logSumExp: logSumExp,
                                    dQ: dQ, dK: dK, dV: dV, workspace: workspace, dims: dims, scale: variant.scale)
        }
        if let rope {
            RoPE.backward(dQ, rope)
            RoPE.backward(dK, rope)
        }
        if let queryNorm = variant.queryNorm, let keyNorm = variant.keyNorm {
            guard let memory = qkNorm, let raw = memory.raw, let dRaw = dQKRaw else {
                preconditionFailure("CausalSelfAttention.backward: QK-norm needs the saved q | k and its workspace")
            }
            let (rows, d, heads) = (qkv.rows, dims.headDim, dims.heads + dims.kvHeads)
            requireShape(dRaw, like: raw, "CausalSelfAttention.backward", "dQKRaw")
            dRaw.fill(0)
            let dNormed = dQKV.columns(0..<(heads * d))
            for head in 0..<heads {
                let columns = (head * d)..<((head + 1) * d), isQuery = head < dims.heads
                RMSNorm.backward(dy: dNormed.columns(columns), x: raw.columns(columns), weight: isQuery ? queryNorm : keyNorm,
                                 rstd: UnsafeMutableBufferPointer(rebasing: memory.rstd[(head * rows)..<((head + 1) * rows)]), dx: dRaw.columns(columns),
                                 dWeight: isQuery ? dVariant.queryNorm : dVariant.keyNorm)
            }
            dNormed.copy(from: dRaw)
        }
        if variant.qkvBias != nil, let dBias = dVariant.qkvBias { Bias.backward(dy: dQKV, dBias: dBias) }
        Linear.backward(dy: dQKV, x: x, weight: qkvWeight, dx: dx, dWeight: dQKVWeight)
    }

    /// The q, k and v column views of a fused `[B·T, (H + 2·Hkv)·d]` projection.
    public static func split(_ qkv: MatrixView, _ dims: AttentionDims) -> (q: MatrixView, k: MatrixView, v: MatrixView) {
        let (modelDim, kvDim) = (dims.heads * dims.headDim, dims.kvHeads * dims.headDim)  // modelDim: H·d, the queries' width
        requireShape(qkv, dims.batch * dims.queryLength, qkvWidth(dims), "CausalSelfAttention", "qkv")
        return (qkv.columns(0..<modelDim), qkv.columns(modelDim..<(modelDim + kvDim)),
                qkv.columns((modelDim + kvDim)..<(modelDim + 2 * kvDim)))
    }
}

/// What attention keeps for its backward, which also decides the kernel that runs.
public enum AttentionMemory {
    /// ``/Kernels/ScaledDotProductAttention``: the probabilities `[B·H·Tq, Tk]`.
    case probabilities(MatrixView)
    /// ``/Kernels/FlashAttention``: the log-sum-exps `[B·H·Tq]` and a workspace of
    /// ``/Kernels/FlashAttention/workspaceCount(keyLength:headDim:threads:)`` floats.
    case logSumExp(UnsafeMutableBufferPointer<Float>, workspace: UnsafeMutableBufferPointer<Float>)
}

/// Which attention kernel a model runs: the one that keeps `[B, H, T, T]` probabilities, or the
/// memory-efficient one that keeps `[B, H, T]` (``/Kernels/FlashAttention``).
public enum AttentionKernel: String, Sendable, CaseIterable {
    case standard
    case memoryEfficient = "memory-efficient"
}

/// Where the rows of a cached forward belong.
public enum KVCacheRows {
    /// One sequence: the rows are its positions `slot.start…`, in order.
    case sequence(KVCacheSlot)
    /// One row for each sequence (a batched decode step): row `i` is position `slots[i].start`
    /// of sequence `i`.
    case streams([KVCacheSlot])
}

/// One layer's key/value cache for ``CausalSelfAttention/forward(x:qkvWeight:outputWeight:rope:y:qkv:saved:context:dims:accumulate:cache:variant:qkNorm:)``:
/// keys and values `[capacity, kvDim]` each, and the position the next rows go to.
///
/// The views point into a cache the caller owns (`Model.InferenceSession`'s), valid as long as it is.
public struct KVCacheSlot {
    public let keys: MatrixView
    public let values: MatrixView
    public var capacity: Int { keys.rows }
    public let start: Int

    public init(keys: MatrixView, values: MatrixView, start: Int) {
        precondition(keys.rows == values.rows && keys.columns == values.columns,
                     "KVCacheSlot: keys \(keys.shape) and values \(values.shape) differ")
        precondition(start >= 0 && start <= keys.rows, "KVCacheSlot: start \(start) is outside 0...\(keys.rows)")
        self.keys = keys
        self.values = values
        self.start = start
    }
}
