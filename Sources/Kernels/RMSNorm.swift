import Foundation

/// Root-mean-square layer normalisation: `y = x / sqrt(mean(x²) + eps) ⊙ weight`.
public enum RMSNorm {
    /// The handout's default epsilon.
    public static let defaultEpsilon: Float = 1e-5

    /// x: [rows, dim], weight: [dim] → y: [rows, dim]; saves rstd: [rows] for backward.
    public static func forward(
        x: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
        y: UnsafeMutableBufferPointer<Float>, rstd: UnsafeMutableBufferPointer<Float>,
        rows: Int, dim: Int, epsilon: Float = defaultEpsilon
    ) {
        requireShape(x, [rows, dim], "RMSNorm.forward", "x")
        requireShape(weight, [dim], "RMSNorm.forward", "weight")
        requireShape(y, [rows, dim], "RMSNorm.forward", "y")
        requireShape(rstd, [rows], "RMSNorm.forward", "rstd")
        let x = x.baseAddress!, w = weight.baseAddress!, y = y.baseAddress!, rstd = rstd.baseAddress!
        Threading.parallelRanges(rows, costPerItem: 3 * dim) { range in
            for row in range {
                let xr = x + row * dim, yr = y + row * dim
                let meanSquare = VectorMath.sumOfSquares(xr, dim) / Float(dim)
                let r = 1 / (meanSquare + epsilon).squareRoot()
                rstd[row] = r
                for i in 0..<dim { yr[i] = xr[i] * r * w[i] }
            }
        }
    }

    /// dy, x: [rows, dim], weight: [dim], rstd: [rows] (from forward) → dx += ∂L/∂x, dWeight += ∂L/∂w.
    public static func backward(
        dy: UnsafeBufferPointer<Float>, x: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
        rstd: UnsafeBufferPointer<Float>,
        dx: UnsafeMutableBufferPointer<Float>, dWeight: UnsafeMutableBufferPointer<Float>,
        rows: Int, dim: Int
    ) {
        requireShape(dy, [rows, dim], "RMSNorm.backward", "dy")
        requireShape(x, [rows, dim], "RMSNorm.backward", "x")
        requireShape(weight, [dim], "RMSNorm.backward", "weight")
        requireShape(rstd, [rows], "RMSNorm.backward", "rstd")
        requireShape(dx, [rows, dim], "RMSNorm.backward", "dx")
        requireShape(dWeight, [dim], "RMSNorm.backward", "dWeight")
        let dy = dy.baseAddress!, x = x.baseAddress!, w = weight.baseAddress!, rstd = rstd.baseAddress!
        let dx = dx.baseAddress!, dw = dWeight.baseAddress!
        Threading.parallelRanges(rows, costPerItem: 6 * dim) { range in
            for row in range {
                let dyr = dy + row * dim, xr = x + row * dim, dxr = dx + row * dim
                let r = rstd[row]
                // ∂L/∂x_i = r·w_i·dy_i − x_i·r³·(Σ_j w_j·dy_j·x_j)/dim
                var projection: Float = 0
                for j in 0..<dim { projection += w[j] * dyr[j] * xr[j] }
                let scale = r * r * r * projection / Float(dim)
                for i in 0..<dim { dxr[i] += r * w[i] * dyr[i] - xr[i] * scale }
            }
        }
        // The weight gradient sums over rows; one writer per column keeps it race-free.
        Threading.parallelRanges(dim, costPerItem: 2 * rows) { columns in
            for row in 0..<rows {
                let dyr = dy + row * dim, xr = x + row * dim, r = rstd[row]
                for i in columns { dw[i] += dyr[i] * xr[i] * r }
            }
        }
    }
}
