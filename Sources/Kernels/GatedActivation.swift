import Foundation

/// The activation on the gate half of a gated feed-forward network (``SwiGLU``):
/// `act(w1·x) ⊙ (w3·x)`.
public enum GatedActivation: String, Codable, Sendable, CaseIterable {
    /// `silu(a) = a·σ(a)`: SwiGLU (Llama, Qwen).
    case silu
    /// GELU with the tanh approximation, `½a·(1 + tanh(√(2/π)·(a + 0.044715·a³)))`: GeGLU
    /// (Gemma; PyTorch's `gelu(approximate="tanh")`). Computed as `a·σ(2u)`, the same function,
    /// since `½(1 + tanh u) = σ(2u)`.
    case geluTanh = "gelu_tanh"

    /// √(2/π)
    static let geluInner: Float = 0.7978845608028654
    static let geluCubic: Float = 0.044715

    /// act(a).
    @inline(__always)
    public func value(_ a: Float) -> Float {
        switch self {
        case .silu: a * VectorMath.sigmoid(a)
        case .geluTanh: a * VectorMath.sigmoid(2 * Self.geluInner * (a + Self.geluCubic * a * a * a))
        }
    }

    /// act(a) and act'(a) from one sigmoid.
    @inline(__always)
    public func valueAndDerivative(_ a: Float) -> (value: Float, derivative: Float) {
        switch self {
        case .silu:
            return SiLU.valueAndDerivative(a)
        case .geluTanh:
            // d/da [a·σ(z)] with z = 2c(a + k·a³): σ(z) + a·σ(z)(1 − σ(z))·2c(1 + 3k·a²).
            let z = 2 * Self.geluInner * (a + Self.geluCubic * a * a * a)
            let s = VectorMath.sigmoid(z)
            return (a * s, s + a * s * (1 - s) * 2 * Self.geluInner * (1 + 3 * Self.geluCubic * a * a))
        }
    }

    /// act over sixteen lanes.
    @inline(__always)
    func lanes(_ a: SIMD16<Float>) -> SIMD16<Float> {
        switch self {
        case .silu: a * VectorMath.sigmoid(a)
        case .geluTanh: a * VectorMath.sigmoid(2 * Self.geluInner * (a + Self.geluCubic * a * a * a))
        }
    }
}
