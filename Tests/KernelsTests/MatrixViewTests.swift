import Kernels
import XCTest

/// The view type itself: which elements a view and its sub-views address inside a strided
/// parent, that writes through a view stay inside it, reshaping, and reading back row by row.
final class MatrixViewTests: XCTestCase {
    /// A [5, 6] view with row stride 9 over a buffer whose element i holds i, so every element
    /// read names its own offset: (r, c) of the parent is r·9 + c.
    let (parentRows, parentColumns, stride) = (5, 6, 9)

    func numberedBuffer() -> TensorBuffer { TensorBuffer((0..<(parentRows * stride)).map(Float.init)) }

    func parent(_ buffer: TensorBuffer) -> MatrixView {
        MatrixView(buffer.pointer, rows: parentRows, columns: parentColumns, rowStride: stride)
    }

    /// The offsets a view of `rows × columns` starting at parent offset `start` covers, row by row.
    func offsets(start: Int, rows: Int, columns: Int) -> [Float] {
        (0..<rows).flatMap { r in (0..<columns).map { c in Float(start + r * stride + c) } }
    }

    func testShapeAndElementAddressing() {
        let buffer = numberedBuffer(), view = parent(buffer)
        XCTAssertEqual(view.shape, [5, 6])
        XCTAssertEqual(view.count, 30)
        XCTAssertEqual(view.rowStride, 9)
        XCTAssertFalse(view.isContiguous, "rows 9 apart with 6 columns leave gaps")
        for r in 0..<parentRows {
            XCTAssertEqual(view.pointer(row: r), buffer.pointer + r * stride)
            for c in 0..<parentColumns { XCTAssertEqual(view[r, c], Float(r * stride + c), "(\(r), \(c))") }
        }
        XCTAssertEqual(view.array, offsets(start: 0, rows: 5, columns: 6), "array reads row by row, skipping the gaps")
    }

    func testSubViewsAddressTheRightElementsOfAStridedParent() {
        let buffer = numberedBuffer(), view = parent(buffer)

        let middle = view.rows(1..<4)
        XCTAssertEqual(middle.shape, [3, 6])
        XCTAssertEqual(middle.rowStride, 9)
        XCTAssertEqual(middle.array, offsets(start: 9, rows: 3, columns: 6))

        let last = view.row(4)
        XCTAssertEqual(last.shape, [1, 6])
        XCTAssertTrue(last.isContiguous, "one row is one run")
        XCTAssertEqual(last.array, offsets(start: 36, rows: 1, columns: 6))
        XCTAssertEqual(Array(last.elements), offsets(start: 36, rows: 1, columns: 6))

        let columns = view.columns(2..<5)
        XCTAssertEqual(columns.shape, [5, 3])
        XCTAssertEqual(columns.rowStride, 9, "a column view keeps the parent's stride")
        XCTAssertEqual(columns[3, 1], Float(3 * 9 + 3))
        XCTAssertEqual(columns.array, offsets(start: 2, rows: 5, columns: 3))

        // Heads of 2 side by side: head 2 is columns 4..<6.
        let head = view.head(2, size: 2)
        XCTAssertEqual(head.shape, [5, 2])
        XCTAssertEqual(head.array, offsets(start: 4, rows: 5, columns: 2))
        XCTAssertEqual(view.head(0, size: 3).array, offsets(start: 0, rows: 5, columns: 3))

        // Views of views compose: rows 1..<3, then columns 1..<4, then that view's row 1.
        let nested = view.rows(1..<3).columns(1..<4).row(1)
        XCTAssertEqual(nested.shape, [1, 3])
        XCTAssertEqual(nested.array, offsets(start: 2 * 9 + 1, rows: 1, columns: 3))
        XCTAssertEqual(view.columns(1..<5).head(1, size: 2).rows(2..<5).array, offsets(start: 2 * 9 + 3, rows: 3, columns: 2))

        // Empty ranges give views of nothing.
        XCTAssertEqual(view.rows(2..<2).count, 0)
        XCTAssertEqual(view.columns(6..<6).array, [])
    }

    func testWritesThroughASubViewLandInTheParent() {
        let buffer = numberedBuffer(), view = parent(buffer)
        view.columns(1..<3)[2, 1] = -5
        XCTAssertEqual(view[2, 2], -5)
        XCTAssertEqual(buffer.storage[2 * 9 + 2], -5)
    }

    func testFillRespectsTheStride() {
        let buffer = numberedBuffer()
        parent(buffer).columns(1..<4).rows(1..<4).fill(-1)
        var expected = (0..<(parentRows * stride)).map(Float.init)
        for r in 1..<4 { for c in 1..<4 { expected[r * stride + c] = -1 } }
        XCTAssertEqual(buffer.array, expected, "only the view's 3×3 elements change; gaps and other columns untouched")
    }

    func testCopyRespectsBothStrides() {
        // Into a strided column view from a packed source.
        let buffer = numberedBuffer()
        let source = TensorBuffer((0..<8).map { -Float($0) - 1 })
        let sourceView = source.matrix(rows: 4, columns: 2)
        parent(buffer).columns(3..<5).rows(1..<5).copy(from: sourceView)
        var expected = (0..<(parentRows * stride)).map(Float.init)
        for r in 0..<4 { for c in 0..<2 { expected[(r + 1) * stride + 3 + c] = -Float(r * 2 + c) - 1 } }
        XCTAssertEqual(buffer.array, expected, "the source lands row by row in the view, nothing else changes")
        XCTAssertEqual(source.array, (0..<8).map { -Float($0) - 1 }, "the source is only read")

        // Out of a strided view into a packed one, then between two views of different strides.
        let other = numberedBuffer()
        let packed = TensorBuffer([Float](repeating: .nan, count: 10))
        packed.matrix(rows: 5, columns: 2).copy(from: parent(other).head(1, size: 2))
        XCTAssertEqual(packed.array, offsets(start: 2, rows: 5, columns: 2))
        let wide = TensorBuffer([Float](repeating: .nan, count: 5 * 4))
        let wideView = MatrixView(wide.pointer + 1, rows: 5, columns: 2, rowStride: 4)
        wideView.copy(from: parent(other).columns(4..<6))
        XCTAssertEqual(wideView.array, offsets(start: 4, rows: 5, columns: 2))
        for index in 0..<20 where ![1, 2].contains(index % 4) {
            XCTAssertTrue(wide.storage[index].isNaN, "element \(index) outside the destination view was written")
        }

        // Copying a view onto itself changes nothing.
        let same = parent(other)
        same.copy(from: same)
        XCTAssertEqual(other.array, (0..<(parentRows * stride)).map(Float.init))
    }

    func testReshapedKeepsTheElementsInRowMajorOrder() {
        let buffer = TensorBuffer((0..<24).map(Float.init))
        let matrix = buffer.matrix(rows: 4, columns: 6)
        XCTAssertTrue(matrix.isContiguous)
        let reshaped = matrix.reshaped(rows: 3, columns: 8)
        XCTAssertEqual(reshaped.shape, [3, 8])
        XCTAssertEqual(reshaped.rowStride, 8)
        XCTAssertEqual(reshaped.base, matrix.base)
        for r in 0..<3 { for c in 0..<8 { XCTAssertEqual(reshaped[r, c], Float(r * 8 + c), "(\(r), \(c))") } }
        XCTAssertEqual(reshaped.array, matrix.array)
        XCTAssertEqual(matrix.reshaped(rows: 24, columns: 1)[17, 0], 17)
        // A row of a strided parent is packed, so it reshapes too.
        let row = parent(numberedBuffer()).row(3).reshaped(rows: 2, columns: 3)
        XCTAssertEqual(row.array, offsets(start: 27, rows: 1, columns: 6))
        XCTAssertEqual(row[1, 0], 30)
    }

    func testConstructorsAndTensorBufferViews() {
        let buffer = TensorBuffer((0..<12).map(Float.init))
        let whole = MatrixView(buffer.storage, rows: 3, columns: 4)
        XCTAssertEqual(whole.rowStride, 4)
        XCTAssertEqual(whole[2, 1], 9)
        XCTAssertEqual(buffer.matrix(rows: 2, columns: 6)[1, 0], 6)
        let inner = buffer.matrix(at: 5, rows: 2, columns: 3)
        XCTAssertEqual(inner.base, buffer.pointer + 5)
        XCTAssertEqual(inner.array, [5, 6, 7, 8, 9, 10])
        let row = MatrixView(row: buffer.slice(2, 4))
        XCTAssertEqual(row.shape, [1, 4])
        XCTAssertEqual(row.array, [2, 3, 4, 5])
        XCTAssertEqual(Array(row.elements), [2, 3, 4, 5])
        let empty = TensorBuffer(count: 0)
        XCTAssertEqual(MatrixView(empty.storage, rows: 0, columns: 7).array, [])
        XCTAssertEqual(whole.elements.count, 12)
        whole.elements[11] = -1
        XCTAssertEqual(buffer.storage[11], -1, "elements are the buffer itself, not a copy")
    }
}
