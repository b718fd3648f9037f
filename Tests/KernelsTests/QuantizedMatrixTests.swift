import CVectorKernels
import Kernels
import TensorIO
import XCTest

/// Block-quantized matrices against TensorIO's decoder (written separately, from ggml's
/// definitions) followed by a plain Double product, at awkward shapes: one row (the decode
/// kernel, AVX2 and portable), several rows (tiles decoded for `cblas_sgemm`), a tile boundary.
final class QuantizedMatrixTests: XCTestCase {
    /// Random blocks: scales as halves in a realistic range, codes over their whole range.
    static func randomBlocks(_ format: QuantizedMatrix.Format, rows: Int, columns: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var bytes: [UInt8] = []
        func half(_ value: Float) { withUnsafeBytes(of: Float16(value).bitPattern.littleEndian) { bytes += $0 } }
        for _ in 0..<(rows * columns / 32) {
            half(Float.random(in: 0.001...0.05, using: &generator))
            if format == .q4_1 { half(Float.random(in: -0.2...0.2, using: &generator)) }
            let codes = format == .q8_0 ? 32 : 16
            for _ in 0..<codes { bytes.append(UInt8.random(in: 0...255, using: &generator)) }
        }
        return bytes
    }

    func testProductsEqualDecodeThenMultiply() {
        for format in QuantizedMatrix.Format.allCases {
            let type = GGMLType(rawValue: UInt32(format.rawValue))!
            for (rows, columns) in [(1, 32), (3, 96), (37, 576), (130, 64)] {
                let blocks = Self.randomBlocks(format, rows: rows, columns: columns, seed: UInt64(rows * columns))
                blocks.withUnsafeBytes { raw in
                    let matrix = QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: raw.baseAddress!)
                    var decoded = [Float](repeating: 0, count: rows * columns)
                    decoded.withUnsafeMutableBufferPointer { type.dequantize(raw, into: $0) }
                    var generator = SeededGenerator(seed: 9)
                    for inputRows in [1, 5] {
                        let xs = TensorBuffer((0..<(inputRows * columns)).map { _ in Float.random(in: -1...1, using: &generator) })
                        let ys = TensorBuffer(count: inputRows * rows)
                        matrix.multiply(xs.matrix(rows: inputRows, columns: columns), into: ys.matrix(rows: inputRows, columns: rows), accumulate: false)
                        var worst = 0.0
                        for i in 0..<inputRows {
                            for r in 0..<rows {
                                var expected = 0.0
                                for c in 0..<columns { expected += Double(decoded[r * columns + c]) * Double(xs.storage[i * columns + c]) }
                                worst = max(worst, abs(expected - Double(ys.storage[i * rows + r])))
                            }
                        }
                        XCTAssertLessThan(worst, 1e-5 * Double(columns).squareRoot(), "\(format) [\(rows), \(columns)] × \(inputRows) rows")
                        if inputRows == 1 {
                            // The portable loop gives the same products.
                            var portable = [Float](repeating: 0, count: rows)
                            lm_quantized_rows_portable(format.rawValue, raw.baseAddress!, matrix.rowBytes, xs.pointer, &portable, 0, rows, columns)
                            for r in 0..<rows { XCTAssertEqual(portable[r], ys.storage[r], accuracy: 1e-4, "\(format) portable row \(r)") }
                        }
                    }
                    // One row decoded, as an embedding lookup reads it.
                    var row = [Float](repeating: 0, count: columns)
                    matrix.decodeRow(rows - 1, into: &row)
                    XCTAssertEqual(row, Array(decoded[((rows - 1) * columns)...]), "\(format) decodeRow")
                }
            }
        }
    }
}
