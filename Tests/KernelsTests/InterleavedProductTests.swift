import CVectorKernels
import Kernels
import TensorIO
import XCTest

/// The products on interleaved blocks (`quantized_interleaved.c`), on each instruction path the
/// CPU runs (AVX2, AVX-512 VNNI), against a Double reference of their specification: the decoded
/// weights times the rounded activations, the minimum term (Q4_1, Q5_1, Q4_K) times the exact
/// ones. A path the CPU lacks is skipped by name.
final class InterleavedProductTests: XCTestCase {
    /// Runs `body` with the interleaved products on `path`, then puts back the path taken before;
    /// skips, naming the path, where this CPU cannot run it.
    static func onPath(_ path: Int, _ name: String, _ body: () throws -> Void) throws {
        let previous = lm_interleaved_path()
        try XCTSkipUnless(lm_interleaved_use_path(Int32(path)) == 1,
                          "no \(name) on this CPU: the interleaved products' \(name) path is not tested here")
        defer { _ = lm_interleaved_use_path(previous) }
        try body()
    }

    func testAVX2ProductIsTheDecodedWeightsTimesTheRoundedActivations() throws {
        try Self.onPath(LM_INTERLEAVED_AVX2, "AVX2 + FMA + F16C", checkAgainstReference)
    }

    func testVNNIProductIsTheDecodedWeightsTimesTheRoundedActivations() throws {
        try Self.onPath(LM_INTERLEAVED_AVX512_VNNI, "AVX-512 F/BW/VL + VNNI", checkAgainstReference)
    }

    /// Every byte of a block but the minimum's (`dmin` for Q4_K, `m` for Q4_1/Q5_1) zeroed there.
    static func withoutMinimum(_ blocks: [UInt8], _ format: QuantizedMatrix.Format) -> [UInt8] {
        guard format == .q4_1 || format == .q5_1 || format == .q4_K else { return blocks }
        var copy = blocks
        for start in stride(from: 0, to: copy.count, by: format.blockBytes) { (copy[start + 2], copy[start + 3]) = (0, 0) }
        return copy
    }

    func checkAgainstReference() {
        let path = lm_interleaved_path()
        for format in QuantizedMatrix.Format.allCases where lm_interleaved_available(format.rawValue) == 1 {
            let type = GGMLType(rawValue: UInt32(format.rawValue))!
            let columnChoices = format.blockValues == 32 ? [32, 96, 640] : [256, 768]
            for (rows, columns) in [(1, columnChoices[0]), (7, columnChoices[1]), (8, columnChoices[0]), (37, columnChoices.last!), (130, columnChoices[1])] {
                let blocks = QuantizedMatrixTests.randomBlocks(format, rows: rows, columns: columns, seed: UInt64(rows * 1_000 + columns))
                var generator = SeededGenerator(seed: UInt64(columns))
                let x = (0..<columns).map { _ in Float.random(in: -3...3, using: &generator) }
                var codes = [Int8](repeating: 0, count: columns), scales = [Float](repeating: 0, count: columns / 32), sums = scales
                lm_quantize_activations(x, columns, &codes, &scales, &sums)
                var decoded = [Float](repeating: 0, count: rows * columns), scaled = decoded
                blocks.withUnsafeBytes { raw in decoded.withUnsafeMutableBufferPointer { type.dequantize(raw, into: $0) } }
                Self.withoutMinimum(blocks, format).withUnsafeBytes { raw in scaled.withUnsafeMutableBufferPointer { type.dequantize(raw, into: $0) } }
                let rowBytes = columns / format.blockValues * format.blockBytes
                var packed = [UInt8](repeating: 0xA5, count: max(1, lm_interleaved_bytes(format.rawValue, rows, columns)))
                lm_interleave_rows(format.rawValue, blocks, rowBytes, columns, 0, rows / 8, &packed)
                // Every range of rows, including ones that cut groups, gives the same bits.
                var whole = [Float](repeating: .nan, count: rows)
                lm_interleaved_rows_q8(format.rawValue, packed, blocks, rowBytes, rows, codes, scales, sums, &whole, 0, rows, columns)
                for cut in Set([0, 1, 3, rows / 2, max(0, rows - 1)]) where cut < rows {
                    var pieces = [Float](repeating: .nan, count: rows)
                    lm_interleaved_rows_q8(format.rawValue, packed, blocks, rowBytes, rows, codes, scales, sums, &pieces, 0, cut, columns)
                    lm_interleaved_rows_q8(format.rawValue, packed, blocks, rowBytes, rows, codes, scales, sums, &pieces, cut, rows, columns)
                    XCTAssertEqual(pieces, whole, "path \(path), \(format) [\(rows), \(columns)] split at row \(cut)")
                }
                for r in 0..<rows {
                    var expected = 0.0, magnitude = 0.0
                    for j in 0..<columns {
                        let rounded = Double(scales[j / 32]) * Double(codes[j])
                        let (w, minimum) = (Double(scaled[r * columns + j]), Double(decoded[r * columns + j] - scaled[r * columns + j]))
                        // Q4_K's last rows (past the last group of 8) take the minimum with the rounded activations.
                        let minimumTimesX = format == .q4_K && r >= rows / 8 * 8 ? minimum * rounded : minimum * Double(x[j])
                        expected += w * rounded + minimumTimesX
                        magnitude += abs(w * rounded) + abs(minimumTimesX)
                    }
                    XCTAssertEqual(Double(whole[r]), expected, accuracy: 2e-6 * magnitude + 1e-6, "path \(path), \(format) [\(rows), \(columns)] row \(r)")
                }
            }
        }
    }
}

extension InterleavedProductTests {
    /// A prompt's product (the interleaved GEMM, four or eight activation rows a pass) is, row for
    /// row, the decode step's one-row product: same bits, on strided views, added to y or not.
    func testAVX2PromptProductEqualsOneRowProducts() throws {
        try Self.onPath(LM_INTERLEAVED_AVX2, "AVX2 + FMA + F16C", checkPromptProduct)
    }

    func testVNNIPromptProductEqualsOneRowProducts() throws {
        try Self.onPath(LM_INTERLEAVED_AVX512_VNNI, "AVX-512 F/BW/VL + VNNI", checkPromptProduct)
    }

    func checkPromptProduct() throws {
        for format in QuantizedMatrix.Format.allCases where lm_interleaved_gemm_available(format.rawValue) == 1 {
            let (rows, columns, batch) = (53, format.blockValues == 32 ? 96 : 512, 19)
            let blocks = QuantizedMatrixTests.randomBlocks(format, rows: rows, columns: columns, seed: 8)
            var generator = SeededGenerator(seed: 9)
            let x = TensorBuffer((0..<(batch * (columns + 5))).map { _ in Float.random(in: -2...2, using: &generator) })
            let start = TensorBuffer((0..<(batch * (rows + 3))).map { _ in Float.random(in: -1...1, using: &generator) })
            try blocks.withUnsafeBytes { raw in
                let matrix = QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: raw.baseAddress!)
                matrix.quantizesActivations = true
                let xs = x.matrix(rows: batch, columns: columns + 5).columns(2..<(columns + 2))
                for accumulate in [false, true] {
                    let together = TensorBuffer(start.array), alone = TensorBuffer(start.array)
                    let ys = together.matrix(rows: batch, columns: rows + 3).columns(1..<(rows + 1))
                    matrix.multiply(xs, into: ys, accumulate: accumulate)
                    for i in 0..<batch {
                        let row = alone.matrix(rows: batch, columns: rows + 3).columns(1..<(rows + 1)).rows(i..<(i + 1))
                        matrix.multiply(xs.rows(i..<(i + 1)), into: row, accumulate: accumulate)
                    }
                    XCTAssertEqual(together.array, alone.array, "path \(lm_interleaved_path()), \(format), accumulate \(accumulate)")
                }
                _ = try XCTUnwrap(matrix.interleavedByteCount > 0 ? matrix : nil)
            }
        }
    }
}


extension InterleavedProductTests {
    /// The AVX2 and AVX-512 VNNI paths give the same bits: every sum of codes is an exact integer
    /// on both and the floating-point steps are the same, so a model runs the same on either
    /// class of CPU. One-row products and prompts, every format, groups cut by the row ranges.
    func testPathsGiveTheSameBits() throws {
        try XCTSkipUnless(lm_interleaved_use_path(Int32(LM_INTERLEAVED_AVX512_VNNI)) == 1,
                          "no AVX-512 F/BW/VL + VNNI on this CPU: only the AVX2 path runs here, nothing to compare it with")
        let previous = lm_interleaved_path()
        defer { _ = lm_interleaved_use_path(previous) }
        for format in QuantizedMatrix.Format.allCases where lm_interleaved_available(format.rawValue) == 1 {
            let (rows, columns, batch) = (45, format.blockValues == 32 ? 640 : 768, 11)
            let blocks = QuantizedMatrixTests.randomBlocks(format, rows: rows, columns: columns, seed: 21)
            var generator = SeededGenerator(seed: 22)
            let x = (0..<(batch * columns)).map { _ in Float.random(in: -4...4, using: &generator) }
            let rowBytes = columns / format.blockValues * format.blockBytes
            var packed = [UInt8](repeating: 0, count: lm_interleaved_bytes(format.rawValue, rows, columns))
            lm_interleave_rows(format.rawValue, blocks, rowBytes, columns, 0, rows / 8, &packed)
            var codes = [Int8](repeating: 0, count: batch * columns), scales = [Float](repeating: 0, count: batch * columns / 32)
            var sums = scales, codeSums = [Int32](repeating: 0, count: batch * columns / 16)
            lm_quantize_activation_rows(x, columns, batch, columns, &codes, &scales, &sums, &codeSums)
            var results: [[Float]] = []
            for path in [LM_INTERLEAVED_AVX2, LM_INTERLEAVED_AVX512_VNNI] {
                XCTAssertEqual(lm_interleaved_use_path(Int32(path)), 1)
                var prompt = [Float](repeating: .nan, count: batch * rows), steps = prompt
                lm_interleaved_gemm_q8(format.rawValue, packed, blocks, rowBytes, rows, codes, scales, sums, codeSums, batch,
                                       &prompt, rows, 0, rows / 8, columns, 0)
                for i in 0..<batch {
                    let row = Array(codes[(i * columns)..<((i + 1) * columns)])
                    let (rowScales, rowSums) = (Array(scales[(i * columns / 32)...].prefix(columns / 32)), Array(sums[(i * columns / 32)...].prefix(columns / 32)))
                    var out = [Float](repeating: .nan, count: rows)
                    for range in [0..<13, 13..<rows] {  // 13 cuts a group
                        lm_interleaved_rows_q8(format.rawValue, packed, blocks, rowBytes, rows, row, rowScales, rowSums, &out,
                                               range.lowerBound, range.upperBound, columns)
                    }
                    steps.replaceSubrange((i * rows)..<((i + 1) * rows), with: out)
                }
                results.append(prompt + steps)
            }
            XCTAssertEqual(results[0], results[1], "\(format): the AVX2 and AVX-512 VNNI paths differ")
        }
    }
}
