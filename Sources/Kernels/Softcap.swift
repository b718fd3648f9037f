import Foundation

/// Logit soft-capping (Gemma 2): `y = cap · tanh(x / cap)`, which bounds every value to
/// `(−cap, cap)` and leaves small ones almost unchanged.
public enum Softcap {
    /// x: [rows, columns] → the same view capped in place.
    public static func forward(_ x: MatrixView, cap: Float) {
        precondition(cap > 0, "Softcap.forward: cap \(cap) must be positive")
        guard x.rows > 0 else { return }
        Threading.parallelRanges(x.rows, costPerItem: 20 * x.columns) { range in
            for row in range {
                let values = x.pointer(row: row)
                for i in 0..<x.columns { values[i] = cap * tanhf(values[i] / cap) }
            }
        }
    }
}
