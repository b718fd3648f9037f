import Foundation

/// Which keys a query row may attend to.
public enum AttentionMask {
    /// Every key is visible.
    case none
    /// Causal: query row `r` (absolute position `queryOffset + r`) sees keys `0...queryOffset + r`.
    /// `queryOffset` is the number of cached positions before the first query (0 without a cache).
    case causal(queryOffset: Int)
    /// Causal within a window (Gemma's and Mistral's sliding layers): query row `r` at absolute
    /// position `p = queryOffset + r` sees keys `max(0, p − window + 1)...p`.
    case slidingWindow(queryOffset: Int, window: Int)
    /// allowed: [queries, keys]; `true` means the query may attend to that key.
    case allowed(UnsafeBufferPointer<Bool>)

    /// Whether a single query row over `keys` keys sees all of them (a decode step's mask).
    func seesEveryKey(ofOneQueryOver keys: Int) -> Bool {
        switch self {
        case .none: true
        case .causal(let offset): offset + 1 >= keys
        case .slidingWindow(let offset, let window): offset + 1 >= keys && keys <= window
        case .allowed: false
        }
    }

    /// The position of the first query row for the masks that hide later keys (causal, sliding):
    /// row `r` sees no key past `offset + r`. nil for the others.
    var causalOffset: Int? {
        switch self {
        case .causal(let offset), .slidingWindow(let offset, _): offset
        case .none, .allowed: nil
        }
    }

    /// The keys row `row` may see, for the masks that state a range (every key without a mask).
    func visibleKeys(row: Int, keys: Int) -> Range<Int> {
        switch self {
        case .none, .allowed: 0..<keys
        case .causal(let offset): 0..<min(keys, offset + row + 1)
        case .slidingWindow(let offset, let window):
            max(0, offset + row + 1 - window)..<min(keys, offset + row + 1)
        }
    }
}

/// Numerically stable softmax over the last dimension. Masked entries get exactly zero weight;
/// a row whose entries are all masked becomes all zeros rather than NaN.
public enum Softmax {
    /// x: [rows, cols] → y: [rows, cols]. `x` and `y` may be the same view.
    public static func forward(x: MatrixView, y: MatrixView) {
        requireShape(y, like: x, "Softmax.forward", "y")
        let (rows, cols) = (x.rows, x.columns)
        guard rows > 0, cols > 0 else { return }
        Threading.parallelRanges(rows, costPerItem: 25 * cols) { range in
            for row in range {
                softmaxRow(x.pointer(row: row), y.pointer(row: row), count: cols, visible: cols)
            }
        }
    }

    /// dy, y: [rows, cols] (y from forward) → dx += y ⊙ (dy − Σ dy ⊙ y). Masked entries have
    /// y = 0 and so get no gradient.
    public static func backward(dy: MatrixView, y: MatrixView, dx: MatrixView) {
        requireShape(dy, like: y, "Softmax.backward", "dy")
        requireShape(dx, like: y, "Softmax.backward", "dx")
        let (rows, cols) = (y.rows, y.columns)
        guard rows > 0, cols > 0 else { return }
        Threading.parallelRanges(rows, costPerItem: 4 * cols) { range in
            for row in range {
                let dyr = dy.pointer(row: row), yr = y.pointer(row: row), dxr = dx.pointer(row: row)
                let inner = VectorMath.dot(dyr, yr, cols)
                for i in 0..<cols { dxr[i] += yr[i] * (dyr[i] - inner) }
            }
        }
    }

    /// Softmax of `input[0..<visible]` into `output[0..<visible]`; `output[visible..<count]` = 0.
    static func softmaxRow(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int, visible: Int
    ) {
        guard visible > 0 else {
            output.update(repeating: 0, count: count)
            return
        }
        // Three passes of sixteen lanes: maximum, exponentials and their sum, normalisation.
        let maximum = VectorMath.maximum(input, visible)
        let total = VectorMath.exponentiate(input, into: output, count: visible, minus: maximum)
        var i = 0
        let inverse = 1 / total
        let scale = SIMD16<Float>(repeating: inverse)
        while i + 16 <= visible {
            VectorMath.store(VectorMath.load(output + i) * scale, output + i)
            i += 16
        }
        while i < visible { output[i] *= inverse; i += 1 }
        if visible < count { (output + visible).update(repeating: 0, count: count - visible) }
    }

    /// Softmax of `input` over the entries where `allowed` is true; the others become 0.
    static func softmaxRow(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int,
        allowed: UnsafePointer<Bool>
    ) {
        var maximum = -Float.infinity
        var anyAllowed = false
        for i in 0..<count where allowed[i] {
            anyAllowed = true
            maximum = max(maximum, input[i])
        }
        guard anyAllowed else {
            output.update(repeating: 0, count: count)
            return
        }
        var total: Float = 0
        for i in 0..<count {
            let e: Float = allowed[i] ? expf(input[i] - maximum) : 0
            output[i] = e
            total += e
        }
        let inverse = 1 / total
        for i in 0..<count { output[i] *= inverse }
    }
}
