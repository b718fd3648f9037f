import Kernels

/// What a family adds to ``CausalSelfAttention`` beyond the seed's: biases on the fused q, k, v
/// projection (Qwen 2), an RMSNorm over each query and key head before RoPE (QK-norm: Qwen 3,
/// Gemma 3), a sliding window (Gemma 3's local layers), and a scale other than `1/√d`.
/// The default is the seed's attention.
public struct AttentionVariant {
    /// [(H + 2·Hkv)·d], added to the fused projection.
    public var qkvBias: UnsafeMutableBufferPointer<Float>?
    /// [d] gains of the QK-norm (both or neither).
    public var queryNorm: UnsafeMutableBufferPointer<Float>?
    public var keyNorm: UnsafeMutableBufferPointer<Float>?
    /// The QK-norm's epsilon.
    public var normEpsilon: Float
    /// A query at position p sees keys `p − window + 1 … p`; nil: every earlier key.
    public var window: Int?
    /// Multiplies the scores; nil: `1/√d`.
    public var scale: Float?

    public init(qkvBias: UnsafeMutableBufferPointer<Float>? = nil, queryNorm: UnsafeMutableBufferPointer<Float>? = nil,
                keyNorm: UnsafeMutableBufferPointer<Float>? = nil, normEpsilon: Float = RMSNorm.defaultEpsilon,
                window: Int? = nil, scale: Float? = nil) {
        precondition((queryNorm == nil) == (keyNorm == nil), "AttentionVariant: QK-norm needs both gains or neither")
        precondition(window.map { $0 >= 1 } ?? true, "AttentionVariant: window \(window ?? 0) must be positive")
        (self.qkvBias, self.queryNorm, self.keyNorm, self.normEpsilon) = (qkvBias, queryNorm, keyNorm, normEpsilon)
        (self.window, self.scale) = (window, scale)
    }

    /// The mask of queries at `offset…` over keys from 0.
    func mask(queryOffset offset: Int) -> AttentionMask {
        window.map { .slidingWindow(queryOffset: offset, window: $0) } ?? .causal(queryOffset: offset)
    }

    /// The first key any of the queries at `offset…` can see: earlier ones need not be read.
    func firstVisibleKey(queryOffset offset: Int) -> Int {
        window.map { max(0, offset + 1 - $0) } ?? 0
    }
}

/// What QK-norm keeps for backward: the projections before the norm, and each head's 1/rms.
public struct QKNormMemory {
    /// The q | k columns of the fused projection before the norm: [B·T, (H + Hkv)·d].
    public let raw: MatrixView?
    /// 1/rms of every (head, row): [(H + Hkv)·B·T], head-major.
    public let rstd: UnsafeMutableBufferPointer<Float>

    /// `raw` nil: inference, which needs only the rstd scratch.
    public init(raw: MatrixView?, rstd: UnsafeMutableBufferPointer<Float>) {
        (self.raw, self.rstd) = (raw, rstd)
    }
}
