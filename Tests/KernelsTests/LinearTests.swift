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
                    var y = [Float](repeating: .nan, count: rows * outFeatures)
                    x.withUnsafeBufferPointer { x in
                        w.withUnsafeBufferPointer { w in
                            y.withUnsafeMutableBufferPointer { y in
                                Linear.forward(x: x, weight: w, y: y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
                            }
                        }
                    }
                    let expected = Reference.linear(widened(x), weight: widened(w), rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
                    assertClose(y, expected, absolute: reductionTolerance(inFeatures), "linear [\(rows), \(inFeatures)] → \(outFeatures)")
                }
            }
        }
    }

    func testAccumulateAddsToExistingOutput() {
        var rng = SeededGenerator(seed: 2)
        let (rows, inFeatures, outFeatures) = (5, 9, 11)
        let x = rng.uniform(rows * inFeatures), w = rng.uniform(outFeatures * inFeatures)
        let residual = rng.uniform(rows * outFeatures)
        var y = residual
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { y in
                    Linear.forward(x: x, weight: w, y: y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, accumulate: true)
                }
            }
        }
        let product = Reference.linear(widened(x), weight: widened(w), rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        assertClose(y, zip(product, residual).map { $0 + Double($1) }, absolute: reductionTolerance(inFeatures + 1), "linear accumulate")
    }

    /// The m = 1 path goes through sgemv; both transposition cases must agree with the reference.
    func testSingleRowProductsTakeTheVectorPathCorrectly() {
        var rng = SeededGenerator(seed: 3)
        let (k, n) = (37, 19)
        let a = rng.uniform(k), b = rng.uniform(k * n)
        var c = [Float](repeating: 0, count: n)
        // op(B) = B with B stored [k, n].
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    sgemm(transposeA: false, transposeB: false, m: 1, n: n, k: k, a: a.baseAddress!, lda: k,
                          b: b.baseAddress!, ldb: n, c: c.baseAddress!, ldc: n)
                }
            }
        }
        assertClose(c, Reference.matmul(widened(a), widened(b), m: 1, k: k, n: n), absolute: reductionTolerance(k), "gemv no-transpose")
    }

    func testBackwardMatchesFiniteDifferencesOfTheReference() {
        var rng = SeededGenerator(seed: 4)
        let (rows, inFeatures, outFeatures) = (3, 5, 4)
        let x = rng.uniform(rows * inFeatures), w = rng.uniform(outFeatures * inFeatures)
        let dy = rng.uniform(rows * outFeatures)
        var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: w.count)
        x.withUnsafeBufferPointer { xb in
            w.withUnsafeBufferPointer { wb in
                dy.withUnsafeBufferPointer { dyb in
                    dx.withUnsafeMutableBufferPointer { dxb in
                        dw.withUnsafeMutableBufferPointer { dwb in
                            Linear.backward(dy: dyb, x: xb, weight: wb, dx: dxb, dWeight: dwb, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
                        }
                    }
                }
            }
        }
        // L = Σ dy ⊙ linear(x, W), differentiated numerically in Double.
        let loss = { (x: [Double], w: [Double]) -> Double in
            zip(Reference.linear(x, weight: w, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures), widened(dy)).map(*).reduce(0, +)
        }
        let (gx, gw) = (finiteDifferenceGradient(widened(x)) { loss($0, widened(w)) },
                        finiteDifferenceGradient(widened(w)) { loss(widened(x), $0) })
        assertClose(dx, gx, absolute: 1e-5, relative: 1e-4, "linear dx")
        assertClose(dw, gw, absolute: 1e-5, relative: 1e-4, "linear dW")
    }
}
