import Foundation

/// Two numbers that say what an attention head does over a prompt, from its weights `[T, T]`:
/// how spread its attention is (the entropy of each query's row, in bits, averaged over the
/// queries) and how far back it looks (the attended distance `Σ_k w[q, k]·(q − k)`, averaged).
/// A head that always looks at the previous token has entropy near 0 and distance near 1; one
/// that looks at the first token, entropy near 0 and a distance growing with the position; one
/// that spreads evenly, a high entropy.
public struct AttentionStatistics: Sendable, Equatable {
    /// Mean over queries of `−Σ_k w log₂ w` (bits).
    public let entropy: Double
    /// Mean over queries of `Σ_k w·(q − k)` (positions).
    public let meanDistance: Double

    /// weights: `[T, T]` row-major, query rows summing to 1, zero above the diagonal.
    public init(weights: [Float], length t: Int) {
        precondition(weights.count == t * t && t > 0, "AttentionStatistics: weights must be [T, T]")
        var entropy = 0.0, distance = 0.0
        for query in 0..<t {
            for key in 0...query {
                let w = Double(weights[query * t + key])
                if w > 0 { entropy -= w * log2(w) }
                distance += w * Double(query - key)
            }
        }
        self.entropy = entropy / Double(t)
        meanDistance = distance / Double(t)
    }
}
