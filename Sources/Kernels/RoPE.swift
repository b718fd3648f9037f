import Foundation

/// Precomputed rotary-embedding angles for one head size: `cos` and `sin` of
/// `position / (theta^(2i / headDim) · factor_i)` for every position below `maxPositions` and
/// pair `i`, where the factors are 1 unless given (Llama 3's frequency scaling divides the
/// low frequencies). Computed in Double and rounded once, so large positions keep full Float
/// accuracy.
public struct RoPETable: Sendable {
    public let headDim: Int
    /// Which dimensions of a head rotate together.
    public let style: RoPEStyle
    public let maxPositions: Int
    public let theta: Double
    /// [maxPositions, headDim / 2]
    public let cos: [Float]
    /// [maxPositions, headDim / 2]
    public let sin: [Float]

    /// headDim must be even and positive; maxPositions ≥ 1; theta > 0; `frequencyFactors`, when
    /// given, one positive divisor per pair.
    public init(headDim: Int, maxPositions: Int, theta: Double, frequencyFactors: [Double]? = nil, style: RoPEStyle = .interleaved) {
        precondition(headDim > 0 && headDim % 2 == 0, "RoPETable: head size \(headDim) must be even and positive")
        precondition(maxPositions >= 1, "RoPETable: maxPositions \(maxPositions) must be at least 1")
        precondition(theta > 0 && theta.isFinite, "RoPETable: theta \(theta) must be positive")
        self.headDim = headDim
        self.style = style
        self.maxPositions = maxPositions
        self.theta = theta
        let pairs = headDim / 2
        precondition(frequencyFactors.map { $0.count == pairs && $0.allSatisfy { $0 > 0 && $0.isFinite } } ?? true,
                     "RoPETable: frequency factors must be \(pairs) positive numbers")
        // Each pair's divisor once; the positions in parallel (a 32,768-token table of 128 pairs
        // is 8M cosines and sines: most of a model's load time when computed on one thread).
        let divisors = (0..<pairs).map { Foundation.pow(theta, Double(2 * $0) / Double(headDim)) * (frequencyFactors?[$0] ?? 1) }
        var cosTable = [Float](repeating: 0, count: maxPositions * pairs)
        var sinTable = [Float](repeating: 0, count: maxPositions * pairs)
        cosTable.withUnsafeMutableBufferPointer { cosines in
            sinTable.withUnsafeMutableBufferPointer { sines in
                let (c, s) = (cosines.baseAddress!, sines.baseAddress!)
                Threading.parallelRanges(maxPositions, costPerItem: 40 * pairs) { positions in
                    for position in positions {
                        for pair in 0..<pairs {
                            let angle = Double(position) / divisors[pair]
                            c[position * pairs + pair] = Float(Foundation.cos(angle))
                            s[position * pairs + pair] = Float(Foundation.sin(angle))
                        }
                    }
                }
            }
        }
        cos = cosTable
        sin = sinTable
    }
}

/// What one RoPE call needs besides the vectors: the angle table and the absolute position of
/// each row (positions: [rows], each below `table.maxPositions`).
public struct RotaryPositions {
    public let table: RoPETable
    public let positions: UnsafeBufferPointer<Int>

    public init(table: RoPETable, positions: UnsafeBufferPointer<Int>) {
        self.table = table
        self.positions = positions
    }
}

/// Which two dimensions of a head rotate together as pair `i` (the same angles either way).
public enum RoPEStyle: String, Codable, Sendable, CaseIterable {
    /// `(x[2i], x[2i+1])`: the CS336 handout's, and llama.cpp's for Llama (its converter permutes
    /// the q and k rows into this order).
    case interleaved
    /// `(x[i], x[i + d/2])`: transformers' `rotate_half`, llama.cpp's NeoX style (Qwen, Gemma).
    case halves
}

/// Rotary position embedding on pairs `(x0, x1)` of each head (interleaved or halves, the
/// table's ``RoPEStyle``): `(x0·cos − x1·sin, x0·sin + x1·cos)` at angle `position / theta^(2i/d)`.
public enum RoPE {
    /// Rotates in place every head of x: [rows, heads · headDim] (a column view of a fused
    /// `[B·T, qkvWidth]` buffer is rotated where it lies), row `r` at `rope.positions[r]`.
    public static func apply(to x: MatrixView, _ rope: RotaryPositions) {
        rotate(x, rope, sign: 1, "RoPE.apply")
    }

    /// RoPE's backward, in place: the gradient with respect to the unrotated input is the
    /// gradient of the output rotated back (the rotation is orthogonal), same layout as ``apply(to:_:)``.
    public static func backward(_ dx: MatrixView, _ rope: RotaryPositions) {
        rotate(dx, rope, sign: -1, "RoPE.backward")
    }

    /// x: [rows, heads · headDim] → y: [rows, heads · headDim], rotated. `x` and `y` may be the same view.
    public static func forward(x: MatrixView, y: MatrixView, _ rope: RotaryPositions) {
        requireShape(y, like: x, "RoPE.forward", "y")
        y.copy(from: x)
        apply(to: y, rope)
    }

    /// Rotation by `sign` × each angle: +1 forward, −1 its inverse.
    private static func rotate(_ x: MatrixView, _ rope: RotaryPositions, sign: Float, _ kernel: String) {
        let (table, positions, rows) = (rope.table, rope.positions, x.rows)
        requireShape(positions, [rows], kernel, "positions")
        precondition(x.columns % table.headDim == 0,
                     "\(kernel): x has \(x.columns) columns, not a whole number of heads of \(table.headDim)")
        let heads = x.columns / table.headDim
        let pairs = table.headDim / 2
        // Pair i is (first + i·step, first + i·step + partner): (2i, 2i+1) or (i, i + d/2).
        let (step, partner) = table.style == .interleaved ? (2, 1) : (1, pairs)
        for row in 0..<rows {
            let position = positions[row]
            precondition(position >= 0 && position < table.maxPositions,
                         "\(kernel): position \(position) at row \(row) is outside 0..<\(table.maxPositions)")
        }
        table.cos.withUnsafeBufferPointer { cosTable in
            table.sin.withUnsafeBufferPointer { sinTable in
                let cosBase = cosTable.baseAddress!, sinBase = sinTable.baseAddress!
                Threading.parallelRanges(rows, costPerItem: 3 * x.columns) { range in
                    for row in range {
                        let c = cosBase + positions[row] * pairs, s = sinBase + positions[row] * pairs
                        for head in 0..<heads {
                            let v = x.pointer(row: row) + head * table.headDim
                            for i in 0..<pairs {
                                let a = step * i, b = a + partner
                                let x0 = v[a], x1 = v[b]
                                let sine = sign * s[i]
                                v[a] = x0 * c[i] - x1 * sine
                                v[b] = x0 * sine + x1 * c[i]
                            }
                        }
                    }
                }
            }
        }
    }
}
