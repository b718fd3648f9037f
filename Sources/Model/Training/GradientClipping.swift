import Kernels

/// Gradient clipping by global L2 norm (handout §4.5).
public enum GradientClipping {
    /// The ε in the scale `maxNorm / (‖g‖ + ε)`.
    public static let epsilon = 1e-6

    /// ‖g‖₂ over the whole flat buffer, accumulated in Double.
    public static func norm(_ gradients: TensorBuffer) -> Double {
        sumOfSquares(UnsafeBufferPointer(gradients.storage)).squareRoot()
    }

    /// Σ g² over `gradients` (part of a buffer: one rank's slice), accumulated in Double.
    public static func sumOfSquares(_ gradients: UnsafeBufferPointer<Float>) -> Double {
        guard let g = gradients.baseAddress, !gradients.isEmpty else { return 0 }
        let chunks = max(1, min(Threading.count, gradients.count / 65_536))
        let size = (gradients.count + chunks - 1) / chunks
        // One partial sum per chunk, on the stack: a training step allocates nothing.
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: chunks) { sums in
            let out = sums.baseAddress!
            Threading.parallelRanges(chunks, costPerItem: size) { range in
                for chunk in range {
                    var sum = 0.0
                    for i in (chunk * size)..<min(gradients.count, (chunk + 1) * size) { sum += Double(g[i]) * Double(g[i]) }
                    out[chunk] = sum
                }
            }
            return sums.reduce(0, +)
        }
    }

    /// Scales `gradients` by `maxNorm / (‖g‖ + ε)` when ‖g‖ exceeds `maxNorm`; returns ‖g‖ before clipping.
    @discardableResult
    public static func clip(_ gradients: TensorBuffer, maxNorm: Double) -> Double {
        let total = norm(gradients)
        if total > maxNorm { scale(gradients.storage, by: Float(maxNorm / (total + epsilon))) }
        return total
    }

    /// Multiplies every value by `factor`.
    public static func scale(_ values: UnsafeMutableBufferPointer<Float>, by factor: Float) {
        guard let g = values.baseAddress else { return }
        Threading.parallelRanges(values.count, costPerItem: 2) { range in
            for i in range { g[i] *= factor }
        }
    }
}
