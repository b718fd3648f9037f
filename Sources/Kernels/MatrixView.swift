/// A shaped, non-owning, writable view of a row-major Float32 matrix: `rows × columns` elements,
/// row `r` starting at `base + r · rowStride` (llm.c's `float*` with its shape attached).
///
/// Kernels take views and check their shapes on entry, so a call states each shape once: where
/// the view is made. Sub-views share the memory: ``rows(_:)`` and ``row(_:)`` pick rows,
/// ``columns(_:)`` and ``head(_:size:)`` pick columns (the row stride stays the parent's), which
/// is how one head of a fused `[B·T, (H + 2·Hkv)·d]` QKV projection is reached without a copy.
///
/// A view is valid as long as the memory it points to (a ``TensorBuffer``, an array's storage
/// inside `withUnsafeMutableBufferPointer`, a memory-mapped file). Nothing is read-only: like a C
/// pointer, a view passed as a kernel's input is only read by that kernel.
public struct MatrixView {
    public let base: UnsafeMutablePointer<Float>
    public let rows: Int
    public let columns: Int
    /// Elements from the start of one row to the start of the next (≥ `columns`).
    public let rowStride: Int

    /// `rows × columns` at `base`, rows `rowStride` apart (default: packed, `columns`).
    public init(_ base: UnsafeMutablePointer<Float>, rows: Int, columns: Int, rowStride: Int? = nil) {
        let stride = rowStride ?? columns
        precondition(rows >= 0 && columns >= 0 && stride >= columns,
                     "MatrixView: rows \(rows), columns \(columns) and row stride \(stride) must be non-negative, stride ≥ columns")
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowStride = stride
    }

    /// The whole of `buffer` as a packed `[rows, columns]` matrix; its size must be exactly that.
    public init(_ buffer: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int) {
        precondition(rows >= 0 && columns >= 0 && buffer.count == rows * columns,
                     "MatrixView: a buffer of \(buffer.count) elements is not [\(rows), \(columns)]")
        // An empty buffer may have no address; a view of it is never read.
        self.init(buffer.baseAddress ?? MatrixView.emptyBase, rows: rows, columns: columns)
    }

    /// One row of `vector.count` elements: how a vector is passed where a matrix is expected.
    public init(row vector: UnsafeMutableBufferPointer<Float>) {
        self.init(vector, rows: 1, columns: vector.count)
    }

    /// Number of elements the view shows (`rows · columns`).
    public var count: Int { rows * columns }

    /// `[rows, columns]`.
    public var shape: [Int] { [rows, columns] }

    /// Whether the rows follow each other without gaps, so the view is one run of `count` elements.
    public var isContiguous: Bool { rowStride == columns || rows <= 1 }

    /// The start of row `r` (row `rows` is one past the end; for pointer arithmetic only).
    @inline(__always)
    public func pointer(row r: Int) -> UnsafeMutablePointer<Float> { base + r * rowStride }

    /// Element `(row, column)`.
    @inline(__always)
    public subscript(row: Int, column: Int) -> Float {
        get { base[row * rowStride + column] }
        nonmutating set { base[row * rowStride + column] = newValue }
    }

    /// Rows `range` (a `[range.count, columns]` view).
    public func rows(_ range: Range<Int>) -> MatrixView {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows,
                     "MatrixView: rows \(range) outside 0..<\(rows)")
        return MatrixView(base + range.lowerBound * rowStride, rows: range.count, columns: columns, rowStride: rowStride)
    }

    /// Row `r` as a `[1, columns]` view.
    public func row(_ r: Int) -> MatrixView { rows(r..<(r + 1)) }

    /// Columns `range` of every row (a `[rows, range.count]` view with this view's row stride).
    public func columns(_ range: Range<Int>) -> MatrixView {
        precondition(range.lowerBound >= 0 && range.upperBound <= columns,
                     "MatrixView: columns \(range) outside 0..<\(columns)")
        return MatrixView(base + range.lowerBound, rows: rows, columns: range.count, rowStride: rowStride)
    }

    /// Head `index` of heads `size` wide laid side by side: columns `index·size ..< (index+1)·size`.
    public func head(_ index: Int, size: Int) -> MatrixView { columns((index * size)..<((index + 1) * size)) }

    /// The same packed elements as `[rows, columns]` (the counts must agree).
    public func reshaped(rows newRows: Int, columns newColumns: Int) -> MatrixView {
        precondition(isContiguous, "MatrixView: only a packed view can be reshaped (row stride \(rowStride), columns \(columns))")
        precondition(newRows * newColumns == count, "MatrixView: [\(rows), \(columns)] cannot be reshaped to [\(newRows), \(newColumns)]")
        return MatrixView(base, rows: newRows, columns: newColumns)
    }

    /// The elements of a packed view as one buffer.
    public var elements: UnsafeMutableBufferPointer<Float> {
        precondition(isContiguous, "MatrixView: elements of a strided view (row stride \(rowStride), columns \(columns)) are not one run")
        return UnsafeMutableBufferPointer(start: base, count: count)
    }

    /// Sets every element to `value`.
    public func fill(_ value: Float) {
        for r in 0..<rows { pointer(row: r).update(repeating: value, count: columns) }
    }

    /// Copies `source`, which must have this view's shape, into this view. Overlapping views are
    /// allowed only when they are the same view (then nothing happens).
    public func copy(from source: MatrixView) {
        requireShape(source, rows, columns, "MatrixView.copy", "source")
        guard source.base != base || source.rowStride != rowStride else { return }
        for r in 0..<rows { pointer(row: r).update(from: source.pointer(row: r), count: columns) }
    }

    /// Sets this view to `a + b`, element by element (all three of one shape; any may be the same view).
    public func sum(_ a: MatrixView, _ b: MatrixView) {
        requireShape(a, rows, columns, "MatrixView.sum", "a")
        requireShape(b, rows, columns, "MatrixView.sum", "b")
        for r in 0..<rows {
            let (out, x, y) = (pointer(row: r), a.pointer(row: r), b.pointer(row: r))
            for i in 0..<columns { out[i] = x[i] + y[i] }
        }
    }

    /// Multiplies every element by `factor`, in place.
    public func scale(by factor: Float) {
        for r in 0..<rows {
            let values = pointer(row: r)
            for i in 0..<columns { values[i] *= factor }
        }
    }

    /// The elements row by row, as an array (a copy).
    public var array: [Float] {
        var values: [Float] = []
        values.reserveCapacity(count)
        for r in 0..<rows { values += UnsafeBufferPointer(start: pointer(row: r), count: columns) }
        return values
    }

    /// A valid address for views of nothing. Never written: no view of it has an element.
    nonisolated(unsafe) private static let emptyBase = UnsafeMutablePointer<Float>.allocate(capacity: 1)
}

extension TensorBuffer {
    /// The whole buffer as a packed `[rows, columns]` matrix.
    public func matrix(rows: Int, columns: Int) -> MatrixView { MatrixView(storage, rows: rows, columns: columns) }

    /// Elements `offset..<offset + rows·columns` as a packed `[rows, columns]` matrix.
    public func matrix(at offset: Int, rows: Int, columns: Int) -> MatrixView {
        MatrixView(slice(offset, rows * columns), rows: rows, columns: columns)
    }
}
