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
    /// applied to Q and K, probs: [B, H, T, T], context: [B·T, C] (attention output before the
    /// output projection). `dims.queryLength` must equal `dims.keyLength` (self-attention).
    public static func forward(
        x: UnsafeBufferPointer<Float>,
        qkvWeight: UnsafeBufferPointer<Float>, outputWeight: UnsafeBufferPointer<Float>,
        positions: UnsafeBufferPointer<Int>, rope: RoPETable,
        y: UnsafeMutableBufferPointer<Float>,
        qkv: UnsafeMutableBufferPointer<Float>, probs: UnsafeMutableBufferPointer<Float>,
        context: UnsafeMutableBufferPointer<Float>,
        dims: AttentionDims, accumulate: Bool = false
    ) {
        requireMatch(dims.queryLength, dims.keyLength, "CausalSelfAttention.forward",
                     "self-attention needs as many keys as queries, got \(dims.queryLength) and \(dims.keyLength)")
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
        ScaledDotProductAttention.forward(
            q: base, queryLayout: fused,
            k: base + modelDim, v: base + modelDim + kvDim, keyLayout: fused,
            out: context.baseAddress!,
            outputLayout: HeadLayout(rowStride: modelDim, batchStride: dims.queryLength * modelDim),
            probs: probs, dims: dims, mask: .causal(queryOffset: 0))
        Linear.forward(x: UnsafeBufferPointer(context), weight: outputWeight, y: y,
                       rows: rows, inFeatures: modelDim, outFeatures: modelDim, accumulate: accumulate)
    }
}
