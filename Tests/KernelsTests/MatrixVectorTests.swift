import Foundation
import Kernels
import ReferenceKernels
import TestSupport
import XCTest

final class MatrixVectorTests: XCTestCase {
    /// Runs `body` with the hand kernel on, then with it off (cblas_sgemv), restoring the setting.
    func withEachKernel(_ body: (String) -> Void) {
        let saved = MatrixVector.useHandKernel
        defer { MatrixVector.useHandKernel = saved }
        if MatrixVector.handKernelAvailable {
            MatrixVector.useHandKernel = true
            body("hand kernel")
        } else {
            print("SKIPPED: the hand matrix–vector kernel needs AVX2+FMA; only cblas_sgemv is checked")
        }
        MatrixVector.useHandKernel = false
        body("cblas_sgemv")
    }

    /// Awkward sizes (1, primes, not multiples of the 8- and 32-column steps), a
    /// row stride wider than the row, alpha and beta, at 1 and 3 threads, against the plain loop.
    func testMatchesReferenceOverAwkwardShapes() {
        let original = Threading.count
        defer { Threading.count = original }
        var rng = SeededGenerator(seed: 11)
        withEachKernel { kernel in
            for threads in [1, 3] {
                Threading.count = threads
                for rows in [1, 3, 4, 5, 13, 250, 1031] {
                    for columns in [1, 7, 8, 31, 33, 97, 288] {
                        for (alpha, beta, padding) in [(Float(1), Float(0), 0), (0.5, 1, 3), (2, -0.25, 1)] {
                            let ldw = columns + padding
                            let w = rng.uniform(rows * ldw), x = rng.uniform(columns), start = rng.uniform(rows)
                            var y = start
                            MatrixVector.multiply(w: w, ldw: ldw, x: x, y: &y, rows: rows, columns: columns, alpha: alpha, beta: beta)
                            let dense = (0..<rows).flatMap { r in w[(r * ldw)..<(r * ldw + columns)] }
                            let product = Reference.linear(widened(x), weight: widened(dense), rows: 1, inFeatures: columns, outFeatures: rows)
                            let expected = (0..<rows).map { Double(alpha) * product[$0] + Double(beta) * Double(start[$0]) }
                            assertClose(y, expected, absolute: reductionTolerance(columns, scale: 2),
                                        "\(kernel), \(threads) threads, [\(rows), \(columns)] ldw \(ldw) α \(alpha) β \(beta)")
                        }
                    }
                }
            }
        }
    }

    /// With beta = 0 the output is written, never read: NaNs already there must not leak.
    func testBetaZeroIgnoresWhatYHeld() {
        var rng = SeededGenerator(seed: 12)
        let (rows, columns) = (37, 40)
        let w = rng.uniform(rows * columns), x = rng.uniform(columns)
        withEachKernel { kernel in
            var y = [Float](repeating: .nan, count: rows)
            MatrixVector.multiply(w: w, ldw: columns, x: x, y: &y, rows: rows, columns: columns)
            XCTAssertFalse(y.contains { $0.isNaN }, kernel)
        }
    }

    /// The model reaches the kernel through `Linear.forward` at one row, and through it the
    /// a classifier-sized product checked on every row.
    func testLinearAtOneRowUsesAnExactKernelForLargeMatrices() {
        var rng = SeededGenerator(seed: 13)
        let (inFeatures, outFeatures) = (96, 24_001)  // 9.2 MB: larger than the caches
        let x = rng.uniform(inFeatures), w = rng.uniform(outFeatures * inFeatures, scale: 0.1)
        let expected = Reference.linear(widened(x), weight: widened(w), rows: 1, inFeatures: inFeatures, outFeatures: outFeatures)
        let xm = Matrix(x, rows: 1, columns: inFeatures), wm = Matrix(w, rows: outFeatures, columns: inFeatures)
        withEachKernel { kernel in
            let y = Matrix(rows: 1, columns: outFeatures, repeating: .nan)
            Linear.forward(x: xm.view, weight: wm.view, y: y.view)
            assertClose(y.array, expected, absolute: reductionTolerance(inFeatures), "\(kernel): 1 × \(inFeatures) → \(outFeatures)")
        }
    }
}
