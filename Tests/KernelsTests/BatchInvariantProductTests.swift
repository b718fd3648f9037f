import CVectorKernels
import Kernels
import TestSupport
import XCTest

/// The product of a batched decode step (``BatchInvariantWeight``): each output row is the bits
/// of its input row multiplied alone, at every format, batch size and thread count, and the
/// Double product of the decoded weights within rounding.
final class BatchInvariantProductTests: XCTestCase {
    func testEachRowIsTheProductOfThatRowAlone() throws {
        for format in QuantizedMatrix.Format.allCases {
            let columns = format.blockValues == 256 ? 512 : 1056, rows = 37  // 1056: a 1024-value chunk and a tail
            let blocks = QuantizedMatrixTests.randomBlocks(format, rows: rows, columns: columns, seed: 9)
            try blocks.withUnsafeBytes { raw in
                let matrix = QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: raw.baseAddress!)
                var decoded = [Float](repeating: 0, count: rows * columns)
                decoded.withUnsafeMutableBufferPointer { out in
                    for r in 0..<rows { matrix.decodeRow(r, into: out.baseAddress! + r * columns) }
                }
                var generator = SeededGenerator(seed: 21)
                for batch in [1, 2, 7, 65] {
                    let x = (0..<(batch * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
                    let together = product(matrix, x, batch: batch)
                    for b in Set([0, batch / 2, batch - 1]) {
                        let row = Array(x[(b * columns)..<((b + 1) * columns)])
                        XCTAssertEqual(Array(together[(b * rows)..<((b + 1) * rows)]), product(matrix, row, batch: 1),
                                       "\(format): row \(b) of \(batch) = the row alone")
                        for r in 0..<rows {
                            var exact = 0.0, scale = 0.0
                            for c in 0..<columns {
                                exact += Double(decoded[r * columns + c]) * Double(row[c])
                                scale += abs(Double(decoded[r * columns + c]) * Double(row[c]))
                            }
                            XCTAssertEqual(Double(together[b * rows + r]), exact, accuracy: 1e-5 * scale + 1e-6, "\(format) row \(r)")
                        }
                    }
                    // The same bits at 1 and 3 threads (rows split elsewhere, pairs formed elsewhere).
                    for threads in [1, 3] {
                        let saved = Threading.count
                        Threading.count = threads
                        defer { Threading.count = saved }
                        XCTAssertEqual(product(matrix, x, batch: batch), together, "\(format): batch \(batch) at \(threads) threads")
                    }
                }
            }
        }
    }

    /// Accumulating adds the product to what y held, and stacked parts write their own columns.
    func testAccumulateAndStackedParts() throws {
        let columns = 64
        let first = QuantizedMatrixTests.randomBlocks(.q4_1, rows: 5, columns: columns, seed: 1)
        try first.withUnsafeBytes { a in
            let one = QuantizedMatrix(format: .q4_1, rows: 5, columns: columns, blocks: a.baseAddress!)
            let other = QuantizedMatrix(format: .q4_0, rows: 4, columns: columns, blocks: a.baseAddress!)  // the same bytes read another way
            let stacked = StackedWeights([one, other])
            var generator = SeededGenerator(seed: 3)
            let x = (0..<(3 * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
            let whole = product(stacked, x, batch: 3, columns: columns)
            let left = product(one, x, batch: 3), right = product(other, x, batch: 3)
            for b in 0..<3 {
                XCTAssertEqual(Array(whole[(b * 9)..<(b * 9 + 5)]), Array(left[(b * 5)..<((b + 1) * 5)]))
                XCTAssertEqual(Array(whole[(b * 9 + 5)..<((b + 1) * 9)]), Array(right[(b * 4)..<((b + 1) * 4)]))
            }
            var y = [Float](repeating: 1.5, count: 3 * 5), xs = x
            xs.withUnsafeMutableBufferPointer { xb in
                y.withUnsafeMutableBufferPointer { yb in
                    BatchInvariantWeight(one).multiply(MatrixView(xb.baseAddress!, rows: 3, columns: columns),
                                                       into: MatrixView(yb.baseAddress!, rows: 3, columns: 5), accumulate: true)
                }
            }
            XCTAssertEqual(y, left.map { 1.5 + $0 })
        }
    }

    private func product(_ weight: any LinearWeight, _ x: [Float], batch: Int, columns: Int? = nil) -> [Float] {
        let columns = columns ?? weight.inFeatures
        var x = x, y = [Float](repeating: .nan, count: batch * weight.outFeatures)
        x.withUnsafeMutableBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { ys in
                BatchInvariantWeight(weight).multiply(MatrixView(xs.baseAddress!, rows: batch, columns: columns),
                                                      into: MatrixView(ys.baseAddress!, rows: batch, columns: weight.outFeatures),
                                                      accumulate: false)
            }
        }
        return y
    }
}
