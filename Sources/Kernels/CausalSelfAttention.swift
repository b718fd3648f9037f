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

    /// x: [B·T, C] with C = H·d; qkvWeight: [(H + 2·Hkv)·d, C]; outputWeight: [C, C];
    /// positions: [B·T] (the absolute position of each row, for RoPE) → y: [B·T, C], added to `y`
    /// with `accumulate` (the residual). Saves for backward: qkv: [B·T, qkvWidth] with RoPE
    /// applied to Q and K, what `saved`'s kernel keeps (probabilities [B, H, Tq, Tk], or
    /// log-sum-exps [B, H, Tq]), context: [B·T, C] (attention output before the output projection).
    ///
    /// Without a cache, `dims.queryLength` must equal `dims.keyLength` (self-attention over the
    /// rows given). With `cache` (batch 1), the rows' keys and values are written into the cache
    /// at `cache.start…` and the queries attend over every cached position up to their own:
    /// `dims.keyLength` must be `cache.start + dims.queryLength`.
    public static func forward(
        x: UnsafeBufferPointer<Float>,
        qkvWeight: UnsafeBufferPointer<Float>, outputWeight: UnsafeBufferPointer<Float>,
        positions: UnsafeBufferPointer<Int>, rope: RoPETable,
        y: UnsafeMutableBufferPointer<Float>,
        qkv: UnsafeMutableBufferPointer<Float>, saved: AttentionMemory,
        context: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims, accumulate: Bool = false, cache: KVCacheSlot? = nil
    ) {
        let offset = cache?.start ?? 0
        requireMatch(offset + dims.queryLength, dims.keyLength, "CausalSelfAttention.forward",
                     "\(dims.queryLength) queries after \(offset) cached positions need \(offset + dims.queryLength) keys, got \(dims.keyLength)")
        requireMatch(rope.headDim, dims.headDim, "CausalSelfAttention.forward",
                     "RoPE table head size \(rope.headDim) differs from the attention head size \(dims.headDim)")
        let rows = dims.batch * dims.queryLength
        let modelDim = dims.heads * dims.headDim
        let kvDim = dims.kvHeads * dims.headDim
        let width = qkvWidth(dims)
        requireShape(x, [rows, modelDim], "CausalSelfAttention.forward", "x")
        requireShape(context, [rows, modelDim], "CausalSelfAttention.forward", "context")

        Linear.forward(x: x, weight: qkvWeight, y: qkv, rows: rows, inFeatures: modelDim, outFeatures: width)
        let base = qkv.baseAddress!
        RoPE.apply(base, rows: rows, rowStride: width, heads: dims.heads, positions: positions, table: rope)
        RoPE.apply(base + modelDim, rows: rows, rowStride: width, heads: dims.kvHeads, positions: positions, table: rope)

        let fused = HeadLayout(rowStride: width, batchStride: dims.queryLength * width)
        var keys = UnsafePointer(base + modelDim), values = UnsafePointer(base + modelDim + kvDim)
        var keyLayout = fused
        if let cache {
            precondition(dims.batch == 1, "CausalSelfAttention.forward: a KV cache holds one sequence, got batch \(dims.batch)")
            precondition(cache.start + rows <= cache.capacity,
                         "CausalSelfAttention.forward: \(rows) rows at position \(cache.start) overflow a cache of \(cache.capacity)")
            for row in 0..<rows {
                (cache.keys + (cache.start + row) * kvDim).update(from: base + row * width + modelDim, count: kvDim)
                (cache.values + (cache.start + row) * kvDim).update(from: base + row * width + modelDim + kvDim, count: kvDim)
            }
            keys = UnsafePointer(cache.keys)
            values = UnsafePointer(cache.values)
            keyLayout = HeadLayout(rowStride: kvDim, batchStride: cache.capacity * kvDim)
        }
        let outputLayout = HeadLayout(rowStride: modelDim, batchStride: dims.queryLength * modelDim)
        switch saved {
        case .probabilities(let probs):
            ScaledDotProductAttention.forward(
                q: base, queryLayout: fused, k: keys, v: values, keyLayout: keyLayout, out: context.baseAddress!,
                outputLayout: outputLayout, probs: probs, dims: dims, mask: .causal(queryOffset: offset))
        case .logSumExp(let logSumExp, let workspace):
            FlashAttention.forward(
                q: base, queryLayout: fused, k: keys, v: values, keyLayout: keyLayout, out: context.baseAddress!,
                outputLayout: outputLayout, logSumExp: logSumExp, workspace: workspace, dims: dims, queryOffset: offset)
        }
        Linear.forward(x: UnsafeBufferPointer(context), weight: outputWeight, y: y,
                       rows: rows, inFeatures: modelDim, outFeatures: modelDim, accumulate: accumulate)
    }

    /// The gradients of ``forward(x:qkvWeight:outputWeight:positions:rope:y:qkv:saved:context:dims:accumulate:cache:)``
    /// without a cache.
    ///
    /// dy: [B·T, C]; x, qkv, saved, context as the forward saved them. Workspaces, overwritten:
    /// dContext: [B·T, C], dQKV: [B·T, qkvWidth], scratch: [B, H, T, T] for the standard kernel
    /// (the memory-efficient one uses `saved`'s workspace; scratch may then be empty). Accumulates into
    /// dx: [B·T, C], dQKVWeight: [(H + 2·Hkv)·d, C] and dOutputWeight: [C, C].
    ///
    /// Output projection's backward → attention's backward into the fused dQ | dK | dV → RoPE's
    /// backward on dQ and dK → the fused projection's backward.
    public static func backward(
        dy: UnsafeBufferPointer<Float>, x: UnsafeBufferPointer<Float>,
        qkvWeight: UnsafeBufferPointer<Float>, outputWeight: UnsafeBufferPointer<Float>,
        positions: UnsafeBufferPointer<Int>, rope: RoPETable,
        qkv: UnsafeBufferPointer<Float>, saved: AttentionMemory, context: UnsafeBufferPointer<Float>,
        dContext: UnsafeMutableBufferPointer<Float>, dQKV: UnsafeMutableBufferPointer<Float>, scratch: UnsafeMutableBufferPointer<Float>,
        dx: UnsafeMutableBufferPointer<Float>, dQKVWeight: UnsafeMutableBufferPointer<Float>, dOutputWeight: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims
    ) {
        requireMatch(dims.queryLength, dims.keyLength, "CausalSelfAttention.backward",
                     "self-attention needs as many keys as queries, got \(dims.queryLength) and \(dims.keyLength)")
        let rows = dims.batch * dims.queryLength
        let modelDim = dims.heads * dims.headDim
        let kvDim = dims.kvHeads * dims.headDim
        let width = qkvWidth(dims)
        requireShape(qkv, [rows, width], "CausalSelfAttention.backward", "qkv")
        requireShape(dQKV, [rows, width], "CausalSelfAttention.backward", "dQKV")
        requireShape(dContext, [rows, modelDim], "CausalSelfAttention.backward", "dContext")
        guard rows > 0 else { return }

        dContext.update(repeating: 0)
        Linear.backward(dy: dy, x: context, weight: outputWeight, dx: dContext, dWeight: dOutputWeight,
                        rows: rows, inFeatures: modelDim, outFeatures: modelDim)
        dQKV.update(repeating: 0)
        let base = qkv.baseAddress!, dBase = dQKV.baseAddress!
        let fused = HeadLayout(rowStride: width, batchStride: dims.queryLength * width)
        let outputLayout = HeadLayout(rowStride: modelDim, batchStride: dims.queryLength * modelDim)
        switch saved {
        case .probabilities(let probs):
            ScaledDotProductAttention.backward(
                q: base, queryLayout: fused, k: base + modelDim, v: base + modelDim + kvDim, keyLayout: fused,
                probs: UnsafeBufferPointer(probs), dOut: dContext.baseAddress!, outputLayout: outputLayout,
                dQ: dBase, dK: dBase + modelDim, dV: dBase + modelDim + kvDim, scratch: scratch, dims: dims, mask: .causal(queryOffset: 0))
        case .logSumExp(let logSumExp, let workspace):
            FlashAttention.backward(
                q: base, queryLayout: fused, k: base + modelDim, v: base + modelDim + kvDim, keyLayout: fused,
                out: context.baseAddress!, dOut: dContext.baseAddress!, outputLayout: outputLayout, logSumExp: UnsafeBufferPointer(logSumExp),
                dQ: dBase, dK: dBase + modelDim, dV: dBase + modelDim + kvDim, workspace: workspace, dims: dims)
        }
        RoPE.backward(dBase, rows: rows, rowStride: width, heads: dims.heads, positions: positions, table: rope)
        RoPE.backward(dBase + modelDim, rows: rows, rowStride: width, heads: dims.kvHeads, positions: positions, table: rope)
        Linear.backward(dy: UnsafeBufferPointer(dQKV), x: x, weight: qkvWeight, dx: dx, dWeight: dQKVWeight,
                        rows: rows, inFeatures: modelDim, outFeatures: width)
    }
}

/// What attention keeps for its backward, which also decides the kernel that runs.
public enum AttentionMemory {
    /// ``ScaledDotProductAttention``: the probabilities `[B, H, Tq, Tk]`.
    case probabilities(UnsafeMutableBufferPointer<Float>)
    /// ``FlashAttention``: the log-sum-exps `[B, H, Tq]` and a workspace of
    /// ``FlashAttention/workspaceCount(threads:)`` floats.
    case logSumExp(UnsafeMutableBufferPointer<Float>, workspace: UnsafeMutableBufferPointer<Float>)
}

/// Which attention kernel a model runs: the one that keeps `[B, H, T, T]` probabilities, or the
/// memory-efficient one that keeps `[B, H, T]` (``FlashAttention``).
public enum AttentionKernel: String, Sendable, CaseIterable {
    case standard
    case memoryEfficient = "memory-efficient"
}

/// One layer's key/value cache for ``CausalSelfAttention/forward(x:qkvWeight:outputWeight:positions:rope:y:qkv:saved:context:dims:accumulate:cache:)``:
/// keys and values `[capacity, kvDim]` each, and the position the next rows go to.
///
/// The pointers are views into a cache the caller owns (`Model.InferenceSession`'s), valid as long
/// as it is.
public struct KVCacheSlot {
    public let keys: UnsafeMutablePointer<Float>
    public let values: UnsafeMutablePointer<Float>
    public let capacity: Int
    public let start: Int

    public init(keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>, capacity: Int, start: Int) {
        precondition(start >= 0 && start <= capacity, "KVCacheSlot: start \(start) is outside 0...\(capacity)")
        self.keys = keys
        self.values = values
        self.capacity = capacity
        self.start = start
    }
}
