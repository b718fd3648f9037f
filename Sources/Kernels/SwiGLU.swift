/// The SwiGLU feed-forward network `w2 · (silu(w1 · x) ⊙ (w3 · x))`.
///
/// `w1` and `w3` are packed into one `[2·hidden, dim]` weight so both come from a single GEMM.
public enum SwiGLU {
    /// Stacks w1: [hidden, dim] over w3: [hidden, dim] into the packed gate/up weight [2·hidden, dim].
    public static func packGateUp(w1: [Float], w3: [Float], hidden: Int, dim: Int) -> [Float] {
        precondition(w1.count == hidden * dim, "SwiGLU.packGateUp: w1 has \(w1.count) elements, shape [\(hidden), \(dim)] needs \(hidden * dim)")
        precondition(w3.count == hidden * dim, "SwiGLU.packGateUp: w3 has \(w3.count) elements, shape [\(hidden), \(dim)] needs \(hidden * dim)")
        return w1 + w3
    }

    /// x: [rows, dim], gateUpWeight: [2·hidden, dim], downWeight: [dim, hidden] → y: [rows, dim]
    /// (added to `y` with `accumulate`); saves gateUp: [rows, 2·hidden] (w1·x | w3·x per row) and
    /// gated: [rows, hidden] = silu(w1·x) ⊙ w3·x for backward.
    public static func forward(
        x: UnsafeBufferPointer<Float>,
        gateUpWeight: UnsafeBufferPointer<Float>, downWeight: UnsafeBufferPointer<Float>,
        y: UnsafeMutableBufferPointer<Float>,
        gateUp: UnsafeMutableBufferPointer<Float>, gated: UnsafeMutableBufferPointer<Float>,
        rows: Int, dim: Int, hidden: Int, accumulate: Bool = false
    ) {
        requireShape(gateUp, [rows, 2 * hidden], "SwiGLU.forward", "gateUp")
        requireShape(gated, [rows, hidden], "SwiGLU.forward", "gated")
        Linear.forward(x: x, weight: gateUpWeight, y: gateUp, rows: rows, inFeatures: dim, outFeatures: 2 * hidden)
        gate(gateUp: UnsafeBufferPointer(gateUp), gated: gated, rows: rows, hidden: hidden)
        Linear.forward(x: UnsafeBufferPointer(gated), weight: downWeight, y: y,
                       rows: rows, inFeatures: hidden, outFeatures: dim, accumulate: accumulate)
    }

    /// gateUp: [rows, 2·hidden] → gated: [rows, hidden] = silu(first half) ⊙ second half.
    public static func gate(
        gateUp: UnsafeBufferPointer<Float>, gated: UnsafeMutableBufferPointer<Float>, rows: Int, hidden: Int
    ) {
        requireShape(gateUp, [rows, 2 * hidden], "SwiGLU.gate", "gateUp")
        requireShape(gated, [rows, hidden], "SwiGLU.gate", "gated")
        guard rows > 0 else { return }
        let source = gateUp.baseAddress!, target = gated.baseAddress!
        Threading.parallelRanges(rows, costPerItem: 25 * hidden) { range in
            for row in range {
                let a = source + row * 2 * hidden, b = a + hidden, out = target + row * hidden
                var i = 0
                while i + 16 <= hidden {
                    let gate = VectorMath.load(a + i)
                    VectorMath.store(gate * VectorMath.sigmoid(gate) * VectorMath.load(b + i), out + i)
                    i += 16
                }
                while i < hidden { out[i] = a[i] * VectorMath.sigmoid(a[i]) * b[i]; i += 1 }
            }
        }
    }

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
                    let (silu, derivative) = SiLU.valueAndDerivative(a[i])
                    da[i] = g[i] * b[i] * derivative
                    db[i] = g[i] * silu
                }
            }
        }
        Linear.backward(dy: UnsafeBufferPointer(dGateUp), x: x, weight: gateUpWeight, dx: dx, dWeight: dGateUpWeight,
                        rows: rows, inFeatures: dim, outFeatures: 2 * hidden)
    }
}
