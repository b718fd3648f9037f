/// A linear layer's bias: `y += b` on every row (Qwen 2's q, k and v projections).
public enum Bias {
    /// bias: [columns] → y: [rows, columns] += bias on every row.
    public static func forward(bias: UnsafeMutableBufferPointer<Float>, y: MatrixView) {
        requireShape(bias, [y.columns], "Bias.forward", "bias")
        guard y.rows > 0 else { return }
        let b = bias.baseAddress!
        Threading.parallelRanges(y.rows, costPerItem: y.columns) { range in
            for row in range {
                let out = y.pointer(row: row)
                for i in 0..<y.columns { out[i] += b[i] }
            }
        }
    }

    /// dy: [rows, columns] → dBias: [columns] += Σ over rows of dy (the input gradient is dy itself).
    public static func backward(dy: MatrixView, dBias: UnsafeMutableBufferPointer<Float>) {
        requireShape(dBias, [dy.columns], "Bias.backward", "dBias")
        guard dy.rows > 0 else { return }
        let db = dBias.baseAddress!
        // One writer per column keeps the sum over rows race-free.
        Threading.parallelRanges(dy.columns, costPerItem: dy.rows) { columns in
            for row in 0..<dy.rows {
                let g = dy.pointer(row: row)
                for i in columns { db[i] += g[i] }
            }
        }
    }
}
