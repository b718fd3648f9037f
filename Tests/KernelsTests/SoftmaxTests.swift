import Kernels
import ReferenceKernels
import TestSupport
import XCTest

final class SoftmaxTests: XCTestCase {
    func testMatchesReference() {
        var rng = SeededGenerator(seed: 20)
        for (rows, cols) in [(1, 1), (1, 7), (13, 33), (8, 256)] {
            let x = rng.uniform(rows * cols, scale: 10)
            assertClose(Run.softmax(x, rows: rows, cols: cols), Reference.softmax(widened(x), rows: rows, cols: cols),
                        absolute: 1e-7, relative: 1e-5, "softmax [\(rows), \(cols)]")
        }
    }

    func testRowsSumToOneAndShiftingChangesNothing() {
        var rng = SeededGenerator(seed: 21)
        let (rows, cols) = (9, 31)
        let x = rng.uniform(rows * cols, scale: 5)
        let y = Run.softmax(x, rows: rows, cols: cols)
        for r in 0..<rows {
            XCTAssertEqual(y[(r * cols)..<((r + 1) * cols)].reduce(0, +), 1, accuracy: 1e-6, "row \(r) sums to 1")
        }
        assertClose(Run.softmax(x.map { $0 + 1000 }, rows: rows, cols: cols), y, absolute: 1e-6, relative: 1e-4, "shift by 1000")
        assertClose(Run.softmax(x.map { $0 - 77.5 }, rows: rows, cols: cols), y, absolute: 1e-6, relative: 1e-4, "shift by −77.5")
    }

    func testExtremeLogitsStayFinite() {
        let y = Run.softmax([1e4, -1e4, 0, 1e4], rows: 1, cols: 4)
        XCTAssertTrue(y.allSatisfy(\.isFinite))
        assertClose(y, [0.5, 0, 0, 0.5], absolute: 1e-7, "±1e4 logits")
    }

    func testBackwardMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 22)
        let (rows, cols) = (3, 6)
        let x = rng.uniform(rows * cols, scale: 2), dy = rng.uniform(rows * cols)
        let y = Run.softmax(x, rows: rows, cols: cols)
        let initial = rng.uniform(rows * cols)
        let dym = Matrix(dy, rows: rows, columns: cols), ym = Matrix(y, rows: rows, columns: cols)
        let dxm = Matrix(initial, rows: rows, columns: cols)  // backward accumulates
        Softmax.backward(dy: dym.view, y: ym.view, dx: dxm.view)
        let dx = dxm.array
        let gradient = finiteDifferenceGradient(widened(x)) { zip(Reference.softmax($0, rows: rows, cols: cols), widened(dy)).map(*).reduce(0, +) }
        assertClose(zip(dx, initial).map { $0 - $1 }, gradient, absolute: 1e-6, relative: 1e-4, "softmax dx accumulated")
    }
}
