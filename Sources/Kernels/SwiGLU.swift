/// The gated feed-forward network `w2 · (act(w1 · x) ⊙ (w3 · x))`: SwiGLU with `act = silu`
/// (the default), GeGLU with ``GatedActivation/geluTanh``.
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
    /// gated: [rows, hidden] = act(w1·x) ⊙ w3·x for backward.
    public static func forward(
        x: MatrixView, gateUpWeight: some LinearWeight, downWeight: some LinearWeight, y: MatrixView,
        gateUp: MatrixView, gated: MatrixView, accumulate: Bool = false, activation: GatedActivation = .silu
    ) {
        requireShape(gateUp, x.rows, gateUpWeight.outFeatures, "SwiGLU.forward", "gateUp")
        Linear.forward(x: x, weight: gateUpWeight, y: gateUp)
        gate(gateUp: gateUp, gated: gated, activation: activation)
        Linear.forward(x: gated, weight: downWeight, y: y, accumulate: accumulate)
    }

    /// gateUp: [rows, 2·hidden] → gated: [rows, hidden] = act(first half) ⊙ second half.
    public static func gate(gateUp: MatrixView, gated: MatrixView, activation: GatedActivation = .silu) {
        let (rows, hidden) = (gated.rows, gated.columns)
        requireShape(gateUp, rows, 2 * hidden, "SwiGLU.gate", "gateUp")
        guard rows > 0 else { return }
        Threading.parallelRanges(rows, costPerItem: 25 * hidden) { range in
            for row in range {
                let a = gateUp.pointer(row: row), b = a + hidden, out = gated.pointer(row: row)
                var i = 0
                while i + 16 <= hidden {
                    VectorMath.store(activation.lanes(VectorMath.load(a + i)) * VectorMath.load(b + i), out + i)
                    i += 16
                }
                while i < hidden { out[i] = activation.value(a[i]) * b[i]; i += 1 }
            }
        }
    }

    /// The gradients of ``forward(x:gateUpWeight:downWeight:y:gateUp:gated:accumulate:activation:)``.
    ///
    /// dy: [rows, dim]; x: [rows, dim]; gateUp: [rows, 2·hidden] and gated: [rows, hidden] as saved
    /// by the forward; dGated: [rows, hidden] and dGateUp: [rows, 2·hidden] workspaces. Accumulates
    /// into dx: [rows, dim], dGateUpWeight: [2·hidden, dim] (w1 over w3) and dDownWeight: [dim, hidden]
    /// (nil: frozen weights).
    ///
    /// With a = w1·x, b = w3·x and g = act(a) ⊙ b: dG = dy·W2, da = dG ⊙ b ⊙ act'(a),
    /// db = dG ⊙ act(a), then the fused linear's backward for [da | db].
    public static func backward(
        dy: MatrixView, x: MatrixView, gateUpWeight: some LinearWeight, downWeight: some LinearWeight,
        gateUp: MatrixView, gated: MatrixView, dGated: MatrixView, dGateUp: MatrixView,
        dx: MatrixView, dGateUpWeight: MatrixView?, dDownWeight: MatrixView?, activation: GatedActivation = .silu
    ) {
        let (rows, hidden) = (gated.rows, gated.columns)
        requireShape(gateUp, rows, 2 * hidden, "SwiGLU.backward", "gateUp")
        requireShape(dGated, like: gated, "SwiGLU.backward", "dGated")
        requireShape(dGateUp, like: gateUp, "SwiGLU.backward", "dGateUp")
        guard rows > 0 else { return }
        dGated.fill(0)
        Linear.backward(dy: dy, x: gated, weight: downWeight, dx: dGated, dWeight: dDownWeight)
        Threading.parallelRanges(rows, costPerItem: 30 * hidden) { range in
            for row in range {
                let a = gateUp.pointer(row: row), b = a + hidden, g = dGated.pointer(row: row)
                let da = dGateUp.pointer(row: row), db = da + hidden
                for i in 0..<hidden {
                    let (value, derivative) = activation.valueAndDerivative(a[i])
                    da[i] = g[i] * b[i] * derivative
                    db[i] = g[i] * value
                }
            }
        }
        Linear.backward(dy: dGateUp, x: x, weight: gateUpWeight, dx: dx, dWeight: dGateUpWeight)
    }
}
