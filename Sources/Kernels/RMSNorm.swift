import Foundation

/// Root-mean-square layer normalisation: `y = x / sqrt(mean(x²) + eps) ⊙ weight`.
public enum RMSNorm {
    /// The handout's default epsilon.
    public static let defaultEpsilon: Float = 1e-5

    /// x: [rows, dim], weight: [dim] → y: [rows, dim]; saves rstd: [rows] for backward.
    /// `x` and `y` may be the same view.
    public static func forward(
        x: MatrixView, weight: UnsafeMutableBufferPointer<Float>, y: MatrixView,
        rstd: UnsafeMutableBufferPointer<Float>, epsilon: Float = defaultEpsilon
    ) {
        let (rows, dim) = (x.rows, x.columns)
        requireShape(weight, [dim], "RMSNorm.forward", "weight")
        requireShape(y, like: x, "RMSNorm.forward", "y")
        requireShape(rstd, [rows], "RMSNorm.forward", "rstd")
        guard rows > 0 else { return }
        let w = weight.baseAddress!, rstd = rstd.baseAddress!
        Threading.parallelRanges(rows, costPerItem: 3 * dim) { range in
            for row in range {
                let xr = x.pointer(row: row), yr = y.pointer(row: row)
                let meanSquare = VectorMath.sumOfSquares(xr, dim) / Float(dim)
                let r = 1 / (meanSquare + epsilon).squareRoot()
                rstd[row] = r
                for i in 0..<dim { yr[i] = xr[i] * r * w[i] }
            }
        }
    }

    /// dy, x: [rows, dim], weight: [dim], rstd: [rows] (from forward) → dx += ∂L/∂x, dWeight += ∂L/∂w
    /// (nil: a frozen gain).
    public static func backward(
        dy: MatrixView, x: MatrixView, weight: UnsafeMutableBufferPointer<Float>, rstd: UnsafeMutableBufferPointer<Float>,
        dx: MatrixView, dWeight: UnsafeMutableBufferPointer<Float>?
    ) {
        let (rows, dim) = (x.rows, x.columns)
        requireShape(dy, like: x, "RMSNorm.backward", "dy")
        requireShape(weight, [dim], "RMSNorm.backward", "weight")
        requireShape(rstd, [rows], "RMSNorm.backward", "rstd")
        requireShape(dx, like: x, "RMSNorm.backward", "dx")
        if let dWeight { requireShape(dWeight, [dim], "RMSNorm.backward", "dWeight") }
        guard rows > 0 else { return }
        let w = weight.baseAddress!, rstd = rstd.baseAddress!
        Threading.parallelRanges(rows, costPerItem: 6 * dim) { range in
            for row in range {
                let dyr = dy.pointer(row: row), xr = x.pointer(row: row), dxr = dx.pointer(row: row)
                let r = rstd[row]
                // ∂L/∂x_i = r·w_i·dy_i − x_i·r³·(Σ_j w_j·dy_j·x_j)/dim
                var projection: Float = 0
                for j in 0..<dim { projection += w[j] * dyr[j] * xr[j] }
                let scale = r * r * r * projection / Float(dim)
                for i in 0..<dim { dxr[i] += r * w[i] * dyr[i] - xr[i] * scale }
            }
        }
        guard let dw = dWeight?.baseAddress else { return }
        // The weight gradient sums over rows; one writer per column keeps it race-free.
        Threading.parallelRanges(dim, costPerItem: 2 * rows) { columns in
            for row in 0..<rows {
                let dyr = dy.pointer(row: row), xr = x.pointer(row: row), r = rstd[row]
                for i in columns { dw[i] += dyr[i] * xr[i] * r }
            }
        }
    }
}
