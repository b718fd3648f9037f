import Kernels
import ReferenceKernels
import TestSupport
import XCTest

final class LinearTests: XCTestCase {
    /// Awkward sizes: 1, primes, non-multiples of 8 and 16, and a few round ones.
    static let sizes = [1, 7, 13, 16, 33, 64]

    func testForwardMatchesReferenceOverManyShapes() {
        var rng = SeededGenerator(seed: 1)
        for rows in Self.sizes {
            for inFeatures in [1, 7, 13, 33, 64] {
                for outFeatures in [1, 13, 24, 33] {
                    let x = rng.uniform(rows * inFeatures), w = rng.uniform(outFeatures * inFeatures)
                    let xm = Matrix(x, rows: rows, columns: inFeatures), wm = Matrix(w, rows: outFeatures, columns: inFeatures)
                    let y = Matrix(rows: rows, columns: outFeatures, repeating: .nan)
                    Linear.forward(x: xm.view, weight: wm.view, y: y.view)
                    let expected = Reference.linear(widened(x), weight: widened(w), rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
                    assertClose(y.array, expected, absolute: reductionTolerance(inFeatures), "linear [\(rows), \(inFeatures)] → \(outFeatures)")
                }
            }
        }
    }

    /// x, the weight and y as strided views inside wider rows (NaN margins, which must be neither
    /// read nor written), including the one-row (matrix–vector) path.
    func testForwardOnStridedViews() {
        var rng = SeededGenerator(seed: 5)
        for (rows, inFeatures, outFeatures, margin) in [(1, 13, 7, 2), (1, 33, 24, 1), (7, 13, 33, 3), (16, 64, 1, 5)] {
            let x = rng.uniform(rows * inFeatures), w = rng.uniform(outFeatures * inFeatures)
            let xm = Matrix(x, rows: rows, columns: inFeatures, margin: margin)
            let wm = Matrix(w, rows: outFeatures, columns: inFeatures, margin: margin)
            let y = Matrix(rows: rows, columns: outFeatures, repeating: .nan, margin: margin)
            Linear.forward(x: xm.view, weight: wm.view, y: y.view)
            let expected = Reference.linear(widened(x), weight: widened(w), rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
            let label = "strided linear [\(rows), \(inFeatures)] → \(outFeatures), margin \(margin)"
            assertClose(y.array, expected, absolute: reductionTolerance(inFeatures), label)
            XCTAssertTrue(y.marginsUntouched, "\(label): wrote outside y's columns")
        }
    }

    func testAccumulateAddsToExistingOutput() {
        var rng = SeededGenerator(seed: 2)
        let (rows, inFeatures, outFeatures) = (5, 9, 11)
        let x = rng.uniform(rows * inFeatures), w = rng.uniform(outFeatures * inFeatures)
        let residual = rng.uniform(rows * outFeatures)
        let xm = Matrix(x, rows: rows, columns: inFeatures), wm = Matrix(w, rows: outFeatures, columns: inFeatures)
        let y = Matrix(residual, rows: rows, columns: outFeatures)
        Linear.forward(x: xm.view, weight: wm.view, y: y.view, accumulate: true)
        let product = Reference.linear(widened(x), weight: widened(w), rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        assertClose(y.array, zip(product, residual).map { $0 + Double($1) }, absolute: reductionTolerance(inFeatures + 1), "linear accumulate")
    }

    /// The m = 1 path goes through sgemv; both transposition cases must agree with the reference.
    func testSingleRowProductsTakeTheVectorPathCorrectly() {
        var rng = SeededGenerator(seed: 3)
        let (k, n) = (37, 19)
        let a = rng.uniform(k), b = rng.uniform(k * n)
        var c = [Float](repeating: 0, count: n)
        // op(B) = B with B stored [k, n].
        sgemm(transposeA: false, transposeB: false, m: 1, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
        assertClose(c, Reference.matmul(widened(a), widened(b), m: 1, k: k, n: n), absolute: reductionTolerance(k), "gemv no-transpose")
    }

    /// Packed, then with every operand and gradient a strided view inside wider rows.
    func testBackwardMatchesFiniteDifferencesOfTheReference() {
        for margin in [0, 2] {
            var rng = SeededGenerator(seed: 4)
            let (rows, inFeatures, outFeatures) = (3, 5, 4)
            let x = rng.uniform(rows * inFeatures), w = rng.uniform(outFeatures * inFeatures)
            let dy = rng.uniform(rows * outFeatures)
            let xm = Matrix(x, rows: rows, columns: inFeatures, margin: margin)
            let wm = Matrix(w, rows: outFeatures, columns: inFeatures, margin: margin)
            let dym = Matrix(dy, rows: rows, columns: outFeatures, margin: margin)
            let dxm = Matrix(rows: rows, columns: inFeatures, repeating: 0, margin: margin)
            let dwm = Matrix(rows: outFeatures, columns: inFeatures, repeating: 0, margin: margin)
            Linear.backward(dy: dym.view, x: xm.view, weight: wm.view, dx: dxm.view, dWeight: dwm.view)
            // L = Σ dy ⊙ linear(x, W), differentiated numerically in Double.
            let loss = { (x: [Double], w: [Double]) -> Double in
                zip(Reference.linear(x, weight: w, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures), widened(dy)).map(*).reduce(0, +)
            }
            let (gx, gw) = (finiteDifferenceGradient(widened(x)) { loss($0, widened(w)) },
                            finiteDifferenceGradient(widened(w)) { loss(widened(x), $0) })
            assertClose(dxm.array, gx, absolute: 1e-5, relative: 1e-4, "linear dx, margin \(margin)")
            assertClose(dwm.array, gw, absolute: 1e-5, relative: 1e-4, "linear dW, margin \(margin)")
            XCTAssertTrue(dxm.marginsUntouched && dwm.marginsUntouched, "linear backward wrote outside dx or dW, margin \(margin)")
        }
    }
}
