import Kernels
import ReferenceKernels
import TestSupport
import XCTest

final class NormAndActivationTests: XCTestCase {
    func testRMSNormMatchesReference() {
        var rng = SeededGenerator(seed: 10)
        for (rows, dim) in [(1, 1), (1, 7), (7, 13), (13, 33), (33, 64), (4, 512)] {
            let x = rng.uniform(rows * dim, scale: 3), w = rng.uniform(dim)
            let (y, rstd) = Run.rmsNorm(x, weight: w, rows: rows, dim: dim)
            assertClose(y, Reference.rmsNorm(widened(x), weight: widened(w), rows: rows, dim: dim),
                        absolute: 1e-6, relative: 1e-5, "rmsnorm [\(rows), \(dim)]")
            XCTAssertTrue(rstd.allSatisfy { $0.isFinite && $0 > 0 }, "rstd saved for backward")
        }
    }

    func testRMSNormEpsilonIsHonoured() {
        // An all-zero row normalises to zero; with a large eps a small row is damped, not blown up.
        let x: [Float] = [0, 0, 0, 0, 1e-3, -1e-3, 1e-3, -1e-3]
        let w: [Float] = [1, 1, 1, 1]
        let (y, _) = Run.rmsNorm(x, weight: w, rows: 2, dim: 4, epsilon: 1)
        assertClose(y, Reference.rmsNorm(widened(x), weight: widened(w), rows: 2, dim: 4, epsilon: 1),
                    absolute: 1e-9, relative: 1e-5, "rmsnorm eps = 1")
        XCTAssertEqual(Array(y[0..<4]), [0, 0, 0, 0])
    }

    func testRMSNormBackwardMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 11)
        let (rows, dim) = (3, 7)
        let x = rng.uniform(rows * dim, scale: 2), w = rng.uniform(dim), dy = rng.uniform(rows * dim)
        let (_, rstd) = Run.rmsNorm(x, weight: w, rows: rows, dim: dim)
        let xm = Matrix(x, rows: rows, columns: dim), weight = TensorBuffer(w), dym = Matrix(dy, rows: rows, columns: dim)
        let saved = TensorBuffer(rstd), dxm = Matrix(rows: rows, columns: dim, repeating: 0), dWeight = TensorBuffer(count: dim)
        RMSNorm.backward(dy: dym.view, x: xm.view, weight: weight.storage, rstd: saved.storage, dx: dxm.view, dWeight: dWeight.storage)
        let (dx, dw) = (dxm.array, dWeight.array)
        let loss = { (x: [Double], w: [Double]) in
            zip(Reference.rmsNorm(x, weight: w, rows: rows, dim: dim), widened(dy)).map(*).reduce(0, +)
        }
        assertClose(dx, finiteDifferenceGradient(widened(x)) { loss($0, widened(w)) }, absolute: 1e-5, relative: 1e-4, "rmsnorm dx")
        assertClose(dw, finiteDifferenceGradient(widened(w)) { loss(widened(x), $0) }, absolute: 1e-5, relative: 1e-4, "rmsnorm dW")
    }

    func testSiLUMatchesReferenceIncludingLargeMagnitudes() {
        var rng = SeededGenerator(seed: 12)
        let x = rng.uniform(1000, scale: 20) + [0, 88, -88, 1e4, -1e4]
        let y = Run.silu(x)
        assertClose(y, Reference.silu(widened(x)), absolute: 1e-6, relative: 1e-6, "silu")
        XCTAssertTrue(y.allSatisfy(\.isFinite))
    }

    func testSiLUBackwardMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 13)
        let x = rng.uniform(17, scale: 5), dy = rng.uniform(17)
        let xs = TensorBuffer(x), dys = TensorBuffer(dy), dxs = TensorBuffer(count: 17)
        SiLU.backward(dy: UnsafeBufferPointer(dys.storage), x: UnsafeBufferPointer(xs.storage), dx: dxs.storage)
        let dx = dxs.array
        let gradient = finiteDifferenceGradient(widened(x)) { zip(Reference.silu($0), widened(dy)).map(*).reduce(0, +) }
        assertClose(dx, gradient, absolute: 1e-5, relative: 1e-4, "silu dx")
    }

    func testSwiGLUMatchesReference() {
        var rng = SeededGenerator(seed: 14)
        for (rows, dim, hidden) in [(1, 8, 12), (7, 13, 33), (33, 16, 43), (2, 64, 172)] {
            let x = rng.uniform(rows * dim)
            let w1 = rng.uniform(hidden * dim), w2 = rng.uniform(dim * hidden), w3 = rng.uniform(hidden * dim)
            let y = Run.swiglu(x, w1: w1, w2: w2, w3: w3, rows: rows, dim: dim, hidden: hidden)
            let expected = Reference.swiglu(widened(x), w1: widened(w1), w2: widened(w2), w3: widened(w3), rows: rows, dim: dim, hidden: hidden)
            assertClose(y, expected, absolute: reductionTolerance(dim * hidden, scale: 0.5), relative: 1e-5, "swiglu [\(rows), \(dim), \(hidden)]")
        }
    }

    func testEmbeddingBackwardAccumulatesRepeatedIDs() {
        var rng = SeededGenerator(seed: 61)
        let (vocab, dim) = (7, 5)
        let ids: [Int32] = [3, 0, 3, 6, 3, 1]
        let dy = rng.uniform(ids.count * dim), initial = rng.uniform(vocab * dim)
        let idBuffer = Pinned(ids), dym = Matrix(dy, rows: ids.count, columns: dim), dTableMatrix = Matrix(initial, rows: vocab, columns: dim)
        Embedding.backward(ids: idBuffer.elements, dy: dym.view, dTable: dTableMatrix.view)
        let dTable = dTableMatrix.array
        var expected = initial.map(Double.init)
        for (row, id) in ids.enumerated() {
            for i in 0..<dim { expected[Int(id) * dim + i] += Double(dy[row * dim + i]) }
        }
        assertClose(dTable, expected, absolute: 1e-6, "dTable += scatter of dy (id 3 three times, ids 2, 4, 5 untouched)")
    }

    func testEmbeddingGathersRows() {
        var rng = SeededGenerator(seed: 15)
        let (vocab, dim) = (11, 5)
        let table = rng.uniform(vocab * dim), ids: [Int32] = [3, 0, 10, 3]
        let idBuffer = Pinned(ids), tableMatrix = Matrix(table, rows: vocab, columns: dim)
        let y = Matrix(rows: ids.count, columns: dim, repeating: .nan)
        Embedding.forward(ids: idBuffer.elements, table: tableMatrix.view, y: y.view)
        XCTAssertEqual(y.array, Reference.embedding(ids.map(Int.init), table: table, dim: dim))
    }
}
