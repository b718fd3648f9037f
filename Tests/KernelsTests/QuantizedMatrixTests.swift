import CVectorKernels
import Kernels
import TensorIO
import XCTest

/// Block-quantized matrices against TensorIO's decoder (written separately, from ggml's
/// definitions) followed by a plain Double product, at awkward shapes: one row (the decode
/// kernel, AVX2 and portable), several rows (tiles decoded for `cblas_sgemm`), a tile boundary.
final class QuantizedMatrixTests: XCTestCase {
    /// Random blocks: every code byte random, the half-float scales (and minimums) in a
    /// realistic range for the format.
    static func randomBlocks(_ format: QuantizedMatrix.Format, rows: Int, columns: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var bytes: [UInt8] = []
        let blockBytes = format.blockBytes
        for _ in 0..<(rows * columns / format.blockValues) {
            var block = (0..<blockBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
            func half(at offset: Int, _ range: ClosedRange<Float>) {
                let bits = Float16(Float.random(in: range, using: &generator)).bitPattern
                (block[offset], block[offset + 1]) = (UInt8(bits & 0xFF), UInt8(bits >> 8))
            }
            switch format {
            case .q4_0, .q5_0, .q8_0: half(at: 0, 0.001...0.05)
            case .q4_1, .q5_1: half(at: 0, 0.001...0.05); half(at: 2, -0.2...0.2)
            case .q4_K, .q5_K: half(at: 0, 0.0002...0.002); half(at: 2, 0.0002...0.002)  // × 6-bit scales
            case .q6_K: half(at: 208, 0.0001...0.001)  // × signed 8-bit scales
            }
            bytes += block
        }
        return bytes
    }

    /// Awkward shapes for a format: one block, an odd row count, a SmolLM2 row, a tile boundary.
    static func shapes(_ format: QuantizedMatrix.Format) -> [(rows: Int, columns: Int)] {
        format.blockValues == 32 ? [(1, 32), (3, 96), (37, 576), (130, 64), (515, 64)] : [(1, 256), (3, 512), (37, 1536), (515, 256)]
    }

    func testProductsEqualDecodeThenMultiply() {
        for format in QuantizedMatrix.Format.allCases {
            let type = GGMLType(rawValue: UInt32(format.rawValue))!
            for (rows, columns) in Self.shapes(format) {
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
                        // Float32 sums of `columns` terms: well within 1e-5 of Σ|w·x|; one wrong
                        // value in a row moves it by ~1/columns of that.
                        for i in 0..<inputRows {
                            for r in 0..<rows {
                                var expected = 0.0, magnitude = 0.0
                                for c in 0..<columns {
                                    let term = Double(decoded[r * columns + c]) * Double(xs.storage[i * columns + c])
                                    expected += term
                                    magnitude += abs(term)
                                }
                                XCTAssertLessThan(abs(expected - Double(ys.storage[i * rows + r])), 1e-5 * magnitude + 1e-6,
                                                  "\(format) [\(rows), \(columns)] × \(inputRows) rows, row \(r) of input \(i)")
                            }
                        }
                        if inputRows == 1 {
                            // The portable loop gives the same products.
                            var portable = [Float](repeating: 0, count: rows)
                            lm_quantized_rows_portable(format.rawValue, raw.baseAddress!, matrix.rowBytes, xs.pointer, &portable, 0, rows, columns)
                            for r in 0..<rows {
                                XCTAssertEqual(portable[r], ys.storage[r], accuracy: 1e-5 * max(1, abs(ys.storage[r])), "\(format) portable row \(r)")
                            }
                        }
                    }
                    // One row decoded, as an embedding lookup reads it.
                    var row = [Float](repeating: 0, count: columns)
                    matrix.decodeRow(rows - 1, into: &row)
                    XCTAssertEqual(row, Array(decoded[((rows - 1) * columns)...]), "\(format) decodeRow")
                    // The portable decoder rounds every value as the AVX2 one and TensorIO's do.
                    var portableRows = [Float](repeating: 0, count: rows * columns)
                    lm_quantized_dequantize_rows_portable(format.rawValue, raw.baseAddress!, matrix.rowBytes, &portableRows, columns, 0, rows, columns)
                    XCTAssertEqual(portableRows, decoded, "\(format) portable decoding")
                }
            }
        }
    }

    /// A decode step over stacked parts of mixed formats (one dispatch across all their rows,
    /// ranges spanning two parts) equals each part multiplied alone, with either activation design.
    func testStackedPartsInOneDispatchEqualEachPartAlone() {
        let columns = 512
        let formats: [QuantizedMatrix.Format] = [.q5_0, .q4_1, .q8_0, .q6_K]
        let sizes = [37, 3, 130, 21]
        let storage = zip(formats, sizes).enumerated().map { i, part in Self.randomBlocks(part.0, rows: part.1, columns: columns, seed: UInt64(40 + i)) }
        var generator = SeededGenerator(seed: 41)
        let x = TensorBuffer((0..<columns).map { _ in Float.random(in: -1...1, using: &generator) })
        let pointers = storage.map { bytes in
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
            raw.copyMemory(from: bytes, byteCount: bytes.count)
            return raw
        }
        defer { pointers.forEach { $0.deallocate() } }
        for eightBit in [false, true] {
            let matrices = (0..<formats.count).map { QuantizedMatrix(format: formats[$0], rows: sizes[$0], columns: columns, blocks: pointers[$0]) }
            matrices.forEach { $0.quantizesActivations = eightBit }
            let stacked = StackedWeights(matrices)
            for threads in [1, 2, 3] {
                let saved = Threading.count
                Threading.count = threads
                defer { Threading.count = saved }
                let together = TensorBuffer(count: stacked.outFeatures)
                stacked.multiply(x.matrix(rows: 1, columns: columns), into: together.matrix(rows: 1, columns: stacked.outFeatures), accumulate: false)
                var start = 0
                for matrix in matrices {
                    let alone = TensorBuffer(count: matrix.rows)
                    matrix.multiply(x.matrix(rows: 1, columns: columns), into: alone.matrix(rows: 1, columns: matrix.rows), accumulate: false)
                    XCTAssertEqual(Array(together.storage[start..<(start + matrix.rows)]), alone.array, "\(matrix.format), 8-bit \(eightBit), \(threads) threads")
                    start += matrix.rows
                }
            }
        }
    }

    /// ggml's design: activations rounded to 8 bits per block, integer dot products. For Q8_0 and
    /// Q4_0 the result is exactly the Float32 product with the rounded activations (integer sums
    /// are exact); for every format it is within the rounding bound of the exact product.
    func testEightBitActivationsAreTheProductOfTheRoundedActivations() throws {
        try XCTSkipUnless(lm_quantized_available() == 1, "no AVX2+FMA+F16C: the 8-bit-activation kernel does not run here")
        let (rows, columns) = (37, 768)
        for format in QuantizedMatrix.Format.allCases {
            guard format.takesEightBitActivations else {
                let zeros = [UInt8](repeating: 0, count: format.blockBytes)
                var y: [Float] = [0]
                zeros.withUnsafeBytes { raw in
                    let matrix = QuantizedMatrix(format: format, rows: 1, columns: 256, blocks: raw.baseAddress!)
                    XCTAssertFalse(matrix.multiplyQuantizingActivations([Float](repeating: 0, count: 256), into: &y), "\(format): K-quants keep Float32 activations")
                }
                continue
            }
            let blocks = Self.randomBlocks(format, rows: rows, columns: columns, seed: 31)
            blocks.withUnsafeBytes { raw in
                let matrix = QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: raw.baseAddress!)
                var generator = SeededGenerator(seed: 12)
                let x = (0..<columns).map { _ in Float.random(in: -2...2, using: &generator) }
                var y = [Float](repeating: 0, count: rows)
                XCTAssertTrue(matrix.multiplyQuantizingActivations(x, into: &y))
                var codes = [Int8](repeating: 0, count: columns), scales = [Float](repeating: 0, count: columns / 32), sums = scales
                lm_quantize_activations(x, columns, &codes, &scales, &sums)
                let rounded = (0..<columns).map { scales[$0 / 32] * Float(codes[$0]) }
                for j in 0..<columns { XCTAssertLessThanOrEqual(abs(rounded[j] - x[j]), scales[j / 32] / 2 * 1.0001) }
                var decoded = [Float](repeating: 0, count: rows * columns)
                decoded.withUnsafeMutableBufferPointer { GGMLType(rawValue: UInt32(format.rawValue))!.dequantize(raw, into: $0) }
                for r in 0..<rows {
                    var exact = 0.0, withRounded = 0.0, bound = 0.0
                    for j in 0..<columns {
                        let w = Double(decoded[r * columns + j])
                        exact += w * Double(x[j])
                        withRounded += w * Double(rounded[j])
                        bound += (abs(w) + 0.2) * Double(scales[j / 32]) / 2
                    }
                    XCTAssertLessThanOrEqual(abs(Double(y[r]) - exact), bound + 1e-4, "\(format) row \(r): within the rounding bound")
                    if format != .q4_1 && format != .q5_1 && format != .q4_K {
                        XCTAssertEqual(Double(y[r]), withRounded, accuracy: 1e-4, "\(format) row \(r): the product of the rounded activations")
                    }
                }
            }
        }
    }
}

/// The quantizer (`lm quantize`, `lm export gguf`) against ggml's reference rules.
final class BlockEncodingTests: XCTestCase {
    /// Byte for byte what gguf-py writes from the same Float32 values (its port of ggml's
    /// `quantize_row_*_ref`), on rows with zeros, constants, outliers and one sign only.
    func testBlocksEqualGGMLReferenceQuantizer() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("ggml_reference_blocks.json")
        let fixture = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let (rows, columns) = (fixture["rows"] as! Int, fixture["columns"] as! Int)
        let values = (fixture["values"] as! [String]).map { Float($0)! }
        XCTAssertEqual(values.count, rows * columns)
        for format in QuantizedMatrix.Format.allCases where format.isWritable {
            let expected = try XCTUnwrap(fixture["\(format)"] as? String, "fixture has \(format)")
            let bytes = values.withUnsafeBufferPointer { format.encode($0.baseAddress!, rows: rows, columns: columns) }
            let hex = bytes.map { String(format: "%02x", $0) }.joined()
            XCTAssertEqual(hex.count, expected.count, "\(format) size")
            if hex != expected {
                let first = zip(hex, expected).enumerated().first { $0.element.0 != $0.element.1 }!.offset / 2
                XCTFail("\(format): first differing byte \(first) (block \(first / format.blockBytes), byte \(first % format.blockBytes) of it)")
            }
        }
    }

    /// Each value decodes to within half a quantization step of where it started (the step
    /// being the block's scale; a whole one on the short side of the signed formats), and the
    /// decoder reads what the encoder wrote, at awkward shapes.
    func testEncodedBlocksDecodeWithinHalfAStep() {
        var generator = SeededGenerator(seed: 77)
        for format in QuantizedMatrix.Format.allCases where format.isWritable {
            let type = GGMLType(rawValue: UInt32(format.rawValue))!
            for (rows, columns) in [(1, 32), (7, 96), (33, 576)] {
                let values = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &generator) * Float.random(in: 0.01...3, using: &generator) }
                let bytes = values.withUnsafeBufferPointer { format.encode($0.baseAddress!, rows: rows, columns: columns) }
                XCTAssertEqual(bytes.count, rows * columns / 32 * format.blockBytes)
                var decoded = [Float](repeating: 0, count: values.count)
                bytes.withUnsafeBytes { raw in decoded.withUnsafeMutableBufferPointer { type.dequantize(raw, into: $0) } }
                for block in 0..<(values.count / 32) {
                    let slice = values[(block * 32)..<(block * 32 + 32)]
                    let (low, high) = (slice.min()!, slice.max()!), largest = slice.map(abs).max()!
                    let step: Float = switch format {
                    case .q8_0: largest / 127
                    case .q4_0: largest / 8
                    case .q5_0: largest / 16
                    case .q4_1: (high - low) / 15
                    default: (high - low) / 31
                    }
                    // Q4_0/Q5_0 give the largest magnitude the most negative code (−8·d), so on the
                    // other side the top code is one step short of it: a whole step there.
                    let allowed = step * (format == .q4_0 || format == .q5_0 ? 1 : 0.5)
                    for j in (block * 32)..<(block * 32 + 32) {
                        // Plus the half-float rounding of the scale (and minimum) times the code.
                        XCTAssertLessThanOrEqual(abs(decoded[j] - values[j]), allowed + largest * 2e-3 + 1e-6, "\(format) [\(rows), \(columns)] value \(j)")
                    }
                }
            }
        }
    }
}
