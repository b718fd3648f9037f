extension SwiGLU {
    /// The gradients of ``forward(x:gateUpWeight:downWeight:y:gateUp:gated:rows:dim:hidden:accumulate:)``.
    ///
    /// dy: [rows, dim]; x: [rows, dim]; gateUp: [rows, 2·hidden] and gated: [rows, hidden] as saved
    /// by the forward; dGated: [rows, hidden] and dGateUp: [rows, 2·hidden] workspaces. Accumulates
    /// into dx: [rows, dim], dGateUpWeight: [2·hidden, dim] (w1 over w3) and dDownWeight: [dim, hidden].
    ///
    /// With a = w1·x, b = w3·x and g = silu(a) ⊙ b: dG = dy·W2, da = dG ⊙ b ⊙ silu'(a),
    /// db = dG ⊙ silu(a), then the fused linear's backward for [da | db].
    public static func backward(
        dy: UnsafeBufferPointer<Float>, x: UnsafeBufferPointer<Float>,
        gateUpWeight: UnsafeBufferPointer<Float>, downWeight: UnsafeBufferPointer<Float>,
        gateUp: UnsafeBufferPointer<Float>, gated: UnsafeBufferPointer<Float>,
        dGated: UnsafeMutableBufferPointer<Float>, dGateUp: UnsafeMutableBufferPointer<Float>,
        dx: UnsafeMutableBufferPointer<Float>,
        dGateUpWeight: UnsafeMutableBufferPointer<Float>, dDownWeight: UnsafeMutableBufferPointer<Float>,
        rows: Int, dim: Int, hidden: Int
    ) {
        requireShape(gateUp, [rows, 2 * hidden], "SwiGLU.backward", "gateUp")
        requireShape(dGated, [rows, hidden], "SwiGLU.backward", "dGated")
        requireShape(dGateUp, [rows, 2 * hidden], "SwiGLU.backward", "dGateUp")
        guard rows > 0 else { return }
        dGated.update(repeating: 0)
        Linear.backward(dy: dy, x: gated, weight: downWeight, dx: dGated, dWeight: dDownWeight,
                        rows: rows, inFeatures: hidden, outFeatures: dim)
        let source = gateUp.baseAddress!, dG = dGated.baseAddress!, target = dGateUp.baseAddress!
        Threading.parallelRanges(rows, costPerItem: 30 * hidden) { range in
            for row in range {
                let a = source + row * 2 * hidden, b = a + hidden, g = dG + row * hidden
                let da = target + row * 2 * hidden, db = da + hidden
                for i in 0..<hidden {
                    let s = VectorMath.sigmoid(a[i])
                    let silu = a[i] * s
                    da[i] = g[i] * b[i] * s * (1 + a[i] * (1 - s))
                    db[i] = g[i] * silu
                }
            }
        }
        Linear.backward(dy: UnsafeBufferPointer(dGateUp), x: x, weight: gateUpWeight, dx: dx, dWeight: dGateUpWeight,
                        rows: rows, inFeatures: dim, outFeatures: 2 * hidden)
    }
}
