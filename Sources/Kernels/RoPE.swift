import Foundation

/// Precomputed rotary-embedding angles for one head size: `cos` and `sin` of
/// `position / theta^(2i / headDim)` for every position below `maxPositions` and pair `i`.
/// Computed in Double and rounded once, so large positions keep full Float accuracy.
public struct RoPETable: Sendable {
    public let headDim: Int
    public let maxPositions: Int
    public let theta: Double
    /// [maxPositions, headDim / 2]
    public let cos: [Float]
    /// [maxPositions, headDim / 2]
    public let sin: [Float]

    /// headDim must be even and positive; maxPositions ≥ 1; theta > 0.
    public init(headDim: Int, maxPositions: Int, theta: Double) {
        precondition(headDim > 0 && headDim % 2 == 0, "RoPETable: head size \(headDim) must be even and positive")
        precondition(maxPositions >= 1, "RoPETable: maxPositions \(maxPositions) must be at least 1")
        precondition(theta > 0 && theta.isFinite, "RoPETable: theta \(theta) must be positive")
        self.headDim = headDim
        self.maxPositions = maxPositions
        self.theta = theta
        let pairs = headDim / 2
        var cosTable = [Float](repeating: 0, count: maxPositions * pairs)
        var sinTable = [Float](repeating: 0, count: maxPositions * pairs)
        for position in 0..<maxPositions {
            for pair in 0..<pairs {
                let angle = Double(position) / Foundation.pow(theta, Double(2 * pair) / Double(headDim))
                cosTable[position * pairs + pair] = Float(Foundation.cos(angle))
                sinTable[position * pairs + pair] = Float(Foundation.sin(angle))
            }
        }
        cos = cosTable
        sin = sinTable
    }
}

/// Rotary position embedding on interleaved pairs `(x[2i], x[2i+1])`:
/// `(x0·cos − x1·sin, x0·sin + x1·cos)` at angle `position / theta^(2i/d)`.
public enum RoPE {
    /// Rotates in place `rows` rows of `heads` head vectors each. Row `r` starts at
    /// `x + r · rowStride` and head `h` at column `h · table.headDim`, so the Q or K part of a
    /// fused `[B·T, qkvDim]` buffer is rotated where it lies. positions: [rows], each below
    /// `table.maxPositions`.
    public static func apply(
        _ x: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, heads: Int,
        positions: UnsafeBufferPointer<Int>, table: RoPETable
    ) {
        rotate(x, rows: rows, rowStride: rowStride, heads: heads, positions: positions, table: table, sign: 1)
    }

    /// RoPE's backward, in place: the gradient with respect to the unrotated input is the
    /// gradient of the output rotated back (the rotation is orthogonal), same layout as ``apply(_:rows:rowStride:heads:positions:table:)``.
    public static func backward(
        _ dx: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, heads: Int,
        positions: UnsafeBufferPointer<Int>, table: RoPETable
    ) {
        rotate(dx, rows: rows, rowStride: rowStride, heads: heads, positions: positions, table: table, sign: -1)
    }

    /// Rotation by `sign` × each angle: +1 forward, −1 its inverse.
    private static func rotate(
        _ x: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, heads: Int,
        positions: UnsafeBufferPointer<Int>, table: RoPETable, sign: Float
    ) {
        requireShape(positions, [rows], "RoPE", "positions")
        precondition(rowStride >= heads * table.headDim,
                     "RoPE: row stride \(rowStride) is shorter than \(heads) heads × \(table.headDim)")
        let pairs = table.headDim / 2
        for row in 0..<rows {
            let position = positions[row]
            precondition(position >= 0 && position < table.maxPositions,
                         "RoPE: position \(position) at row \(row) is outside 0..<\(table.maxPositions)")
        }
        table.cos.withUnsafeBufferPointer { cosTable in
            table.sin.withUnsafeBufferPointer { sinTable in
                let cosBase = cosTable.baseAddress!, sinBase = sinTable.baseAddress!
                Threading.parallelRanges(rows, costPerItem: 3 * heads * table.headDim) { range in
                    for row in range {
                        let c = cosBase + positions[row] * pairs, s = sinBase + positions[row] * pairs
                        for head in 0..<heads {
                            let v = x + row * rowStride + head * table.headDim
                            for i in 0..<pairs {
                                let x0 = v[2 * i], x1 = v[2 * i + 1]
                                let sine = sign * s[i]
                                v[2 * i] = x0 * c[i] - x1 * sine
                                v[2 * i + 1] = x0 * sine + x1 * c[i]
                            }
                        }
                    }
                }
            }
        }
    }

    /// x: [rows, heads · headDim] → y: [rows, heads · headDim], rotated by positions: [rows].
    public static func forward(
        x: UnsafeBufferPointer<Float>, y: UnsafeMutableBufferPointer<Float>,
        rows: Int, heads: Int, positions: UnsafeBufferPointer<Int>, table: RoPETable
    ) {
        let width = heads * table.headDim
        requireShape(x, [rows, width], "RoPE.forward", "x")
        requireShape(y, [rows, width], "RoPE.forward", "y")
        guard rows > 0 else { return }
        if y.baseAddress! != UnsafeMutablePointer(mutating: x.baseAddress!) {
            y.baseAddress!.update(from: x.baseAddress!, count: x.count)
        }
        apply(y.baseAddress!, rows: rows, rowStride: width, heads: heads, positions: positions, table: table)
    }
}
