import ReferenceKernels
import Kernels
import XCTest

/// A test's matrix: `[rows, columns]` values in a ``TensorBuffer`` of its own, with the
/// ``MatrixView`` a kernel takes, so each call states its shapes once (here) and reads back with
/// ``array``.
///
/// With a `margin` the view is the middle columns of rows `margin` wider on each side (a row
/// stride larger than the columns, a base that is not the buffer's start: how a head of a fused
/// projection is reached). The margins hold NaN, so a kernel that reads them spoils its result
/// and one that writes them is caught by ``marginsUntouched``.
///
/// The view is valid while this object lives: keep it in a `let` for as long as the view is used.
final class Matrix {
    let buffer: TensorBuffer
    let view: MatrixView
    let margin: Int

    /// `values`, row by row, as `[rows, columns]`.
    init(_ values: [Float], rows: Int, columns: Int, margin: Int = 0) {
        precondition(values.count == rows * columns, "Matrix: \(values.count) values are not [\(rows), \(columns)]")
        let stride = columns + 2 * margin
        buffer = TensorBuffer([Float](repeating: .nan, count: rows * stride))
        view = MatrixView(buffer.pointer, rows: rows, columns: stride).columns(margin..<(margin + columns))
        self.margin = margin
        for r in 0..<rows {
            _ = UnsafeMutableBufferPointer(start: view.pointer(row: r), count: columns)
                .update(fromContentsOf: values[(r * columns)..<((r + 1) * columns)])
        }
    }

    /// `[rows, columns]`, every element `value`.
    convenience init(rows: Int, columns: Int, repeating value: Float, margin: Int = 0) {
        self.init([Float](repeating: value, count: rows * columns), rows: rows, columns: columns, margin: margin)
    }

    /// The view's elements, row by row.
    var array: [Float] { view.array }

    /// Whether every element outside the view is still NaN.
    var marginsUntouched: Bool {
        let stride = view.rowStride
        return buffer.storage.indices.allSatisfy { index in
            let column = index % stride
            return (margin..<(margin + view.columns)).contains(column) || buffer.storage[index].isNaN
        }
    }
}

/// An owned copy of an array at a fixed address, for the kernels' integer and Boolean inputs
/// (ids, targets, positions, masks). Valid while this object lives.
final class Pinned<Element> {
    private let storage: UnsafeMutableBufferPointer<Element>

    init(_ values: [Element]) {
        // One spare element keeps the address non-nil for an empty array.
        let raw = UnsafeMutableBufferPointer<Element>.allocate(capacity: max(values.count, 1))
        _ = raw.initialize(fromContentsOf: values)
        storage = UnsafeMutableBufferPointer(rebasing: raw[0..<values.count])
    }

    deinit {
        storage.deinitialize()
        storage.baseAddress!.deallocate()
    }

    var elements: UnsafeBufferPointer<Element> { UnsafeBufferPointer(storage) }
}

/// `count` NaNs in a buffer: outputs a kernel must write in full.
func unwritten(_ count: Int) -> TensorBuffer { TensorBuffer([Float](repeating: .nan, count: count)) }

/// Array-in, array-out wrappers so tests read as comparisons rather than pointer plumbing.
enum Run {
    static func rmsNorm(_ x: [Float], weight: [Float], rows: Int, dim: Int, epsilon: Float = 1e-5) -> (y: [Float], rstd: [Float]) {
        let x = Matrix(x, rows: rows, columns: dim), weight = TensorBuffer(weight)
        let y = Matrix(rows: rows, columns: dim, repeating: .nan), rstd = unwritten(rows)
        RMSNorm.forward(x: x.view, weight: weight.storage, y: y.view, rstd: rstd.storage, epsilon: epsilon)
        return (y.array, rstd.array)
    }

    static func softmax(_ x: [Float], rows: Int, cols: Int) -> [Float] {
        let x = Matrix(x, rows: rows, columns: cols), y = Matrix(rows: rows, columns: cols, repeating: .nan)
        Softmax.forward(x: x.view, y: y.view)
        return y.array
    }

    static func silu(_ x: [Float]) -> [Float] {
        let x = TensorBuffer(x), y = unwritten(x.count)
        SiLU.forward(x: UnsafeBufferPointer(x.storage), y: y.storage)
        return y.array
    }

    static func rope(_ x: [Float], rows: Int, heads: Int, positions: [Int], table: RoPETable) -> [Float] {
        let width = heads * table.headDim
        let x = Matrix(x, rows: rows, columns: width), y = Matrix(rows: rows, columns: width, repeating: .nan)
        let positions = Pinned(positions)
        RoPE.forward(x: x.view, y: y.view, RotaryPositions(table: table, positions: positions.elements))
        return y.array
    }

    /// The attention operands of `dims` as matrices: q and out `[B·Tq, H·d]`, k and v `[B·Tk, Hkv·d]`,
    /// each inside rows `margin` wider on either side.
    struct AttentionOperands {
        let q, k, v: Matrix
        init(q: [Float], k: [Float], v: [Float], dims: AttentionDims, margin: Int) {
            let (queryRows, keyRows) = (dims.batch * dims.queryLength, dims.batch * dims.keyLength)
            let (qWidth, kvWidth) = (dims.heads * dims.headDim, dims.kvHeads * dims.headDim)
            self.q = Matrix(q, rows: queryRows, columns: qWidth, margin: margin)
            self.k = Matrix(k, rows: keyRows, columns: kvWidth, margin: margin)
            self.v = Matrix(v, rows: keyRows, columns: kvWidth, margin: margin)
        }
    }

    /// q: [B, Tq, H·d], k, v: [B, Tk, Hkv·d] → out: [B, Tq, H·d], probs: [B, H, Tq, Tk]. With a
    /// `margin` every operand is a strided view inside wider rows (and the margins must stay untouched).
    static func attention(q: [Float], k: [Float], v: [Float], dims: AttentionDims, mask: [Bool]? = nil,
                          causalOffset: Int? = nil, margin: Int = 0) -> (out: [Float], probs: [Float]) {
        let operands = AttentionOperands(q: q, k: k, v: v, dims: dims, margin: margin)
        let out = Matrix(rows: dims.batch * dims.queryLength, columns: dims.heads * dims.headDim, repeating: .nan, margin: margin)
        let probs = Matrix(rows: dims.batch * dims.heads * dims.queryLength, columns: dims.keyLength, repeating: .nan)
        let allowed = Pinned(mask ?? [])
        let maskValue: AttentionMask
        if let causalOffset { maskValue = .causal(queryOffset: causalOffset) }
        else if mask != nil { maskValue = .allowed(allowed.elements) }
        else { maskValue = .none }
        ScaledDotProductAttention.forward(q: operands.q.view, k: operands.k.view, v: operands.v.view, out: out.view, probs: probs.view,
                                          dims: dims, mask: maskValue)
        XCTAssertTrue(out.marginsUntouched, "attention \(dims) wrote outside out's columns")
        return (out.array, probs.array)
    }

    static func swiglu(_ x: [Float], w1: [Float], w2: [Float], w3: [Float], rows: Int, dim: Int, hidden: Int) -> [Float] {
        let x = Matrix(x, rows: rows, columns: dim)
        let gateUpWeight = Matrix(SwiGLU.packGateUp(w1: w1, w3: w3, hidden: hidden, dim: dim), rows: 2 * hidden, columns: dim)
        let downWeight = Matrix(w2, rows: dim, columns: hidden)
        let y = Matrix(rows: rows, columns: dim, repeating: .nan)
        let gateUp = Matrix(rows: rows, columns: 2 * hidden, repeating: .nan), gated = Matrix(rows: rows, columns: hidden, repeating: .nan)
        SwiGLU.forward(x: x.view, gateUpWeight: gateUpWeight.view, downWeight: downWeight.view, y: y.view,
                       gateUp: gateUp.view, gated: gated.view)
        return y.array
    }
}

/// Head `head` (columns head·d..<(head+1)·d) of batch entry `batch` in a [B, rows, width] array.
func headSlice<T: BinaryFloatingPoint>(_ x: [T], batch: Int, rows: Int, width: Int, head: Int, headDim d: Int) -> [Double] {
    var slice: [Double] = []
    slice.reserveCapacity(rows * d)
    for t in 0..<rows {
        let start: Int = (batch * rows + t) * width + head * d
        slice += x[start..<(start + d)].map { Double($0) }
    }
    return slice
}

extension Run {
    /// Attention over [B, T, H·d] layouts in Double, head by head through the reference.
    static func referenceAttention(_ q: [Double], _ k: [Double], _ v: [Double], dims: AttentionDims, causal: Bool) -> [Double] {
        let (tq, tk, d) = (dims.queryLength, dims.keyLength, dims.headDim)
        let (qWidth, kvWidth) = (dims.heads * d, dims.kvHeads * d)
        var out = [Double](repeating: 0, count: dims.batch * tq * qWidth)
        var allowed: [Bool]?
        if causal { allowed = (0..<(tq * tk)).map { (index: Int) -> Bool in index % tk <= (tk - tq) + index / tk } }
        for b in 0..<dims.batch {
            for h in 0..<dims.heads {
                let g = h / (dims.heads / dims.kvHeads)
                func slice(_ x: [Double], rows: Int, width: Int, head: Int) -> [Double] {
                    headSlice(x, batch: b, rows: rows, width: width, head: head, headDim: d)
                }
                let o = Reference.attention(q: slice(q, rows: tq, width: qWidth, head: h), k: slice(k, rows: tk, width: kvWidth, head: g),
                                            v: slice(v, rows: tk, width: kvWidth, head: g), queries: tq, keys: tk, headDim: d, allowed: allowed)
                for t in 0..<tq {
                    for c in 0..<d {
                        let index: Int = (b * tq + t) * qWidth + h * d + c
                        out[index] = o[t * d + c]
                    }
                }
            }
        }
        return out
    }

    /// Runs the attention backward on [B, T, heads·d] operands: dQ, dK, dV from zeros. With a
    /// `margin` every operand and gradient is a strided view inside wider rows.
    static func attentionBackward(q: [Float], k: [Float], v: [Float], probs: [Float], dOut: [Float], dims: AttentionDims,
                                  mask: AttentionMask, margin: Int = 0) -> (dQ: [Float], dK: [Float], dV: [Float]) {
        let (queryRows, keyRows) = (dims.batch * dims.queryLength, dims.batch * dims.keyLength)
        let (qWidth, kvWidth) = (dims.heads * dims.headDim, dims.kvHeads * dims.headDim)
        let operands = AttentionOperands(q: q, k: k, v: v, dims: dims, margin: margin)
        let square = (rows: dims.batch * dims.heads * dims.queryLength, columns: dims.keyLength)
        let probs = Matrix(probs, rows: square.rows, columns: square.columns)
        let dOut = Matrix(dOut, rows: queryRows, columns: qWidth, margin: margin)
        let dQ = Matrix(rows: queryRows, columns: qWidth, repeating: 0, margin: margin)
        let dK = Matrix(rows: keyRows, columns: kvWidth, repeating: 0, margin: margin)
        let dV = Matrix(rows: keyRows, columns: kvWidth, repeating: 0, margin: margin)
        let scratch = Matrix(rows: square.rows, columns: square.columns, repeating: 0)
        ScaledDotProductAttention.backward(
            q: operands.q.view, k: operands.k.view, v: operands.v.view, probs: probs.view, dOut: dOut.view,
            dQ: dQ.view, dK: dK.view, dV: dV.view, scratch: scratch.view, dims: dims, mask: mask)
        for (gradient, name) in [(dQ, "dQ"), (dK, "dK"), (dV, "dV")] {
            XCTAssertTrue(gradient.marginsUntouched, "attention backward \(dims) wrote outside \(name)'s columns")
        }
        return (dQ.array, dK.array, dV.array)
    }
}
