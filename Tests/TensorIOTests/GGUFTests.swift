import Foundation
import Kernels
import TensorIO
import TestSupport
import XCTest

/// Test quantizers, written from ggml's reference quantizers' definitions (not from our decoder).
enum TestQuantizer {
    static func half(_ value: Float) -> [UInt8] { GGUFBuilder.le(Float16(value).bitPattern) }
    static func halfValue(_ value: Float) -> Float { Float(Float16(value)) }

    /// One block of 32 values in a legacy format, and the scale it used.
    static func block(_ x: [Float], _ type: GGMLType) -> (bytes: [UInt8], scale: Float) {
        precondition(x.count == 32)
        switch type {
        case .q8_0:
            let amax = x.map(abs).max()!, d = amax / 127, id = d == 0 ? 0 : 1 / d
            return (half(d) + x.map { UInt8(bitPattern: Int8(($0 * id).rounded())) }, halfValue(d))
        case .q4_0, .q5_0:
            let levels: Float = type == .q4_0 ? 8 : 16
            let max = x.max(by: { abs($0) < abs($1) })!, d = max / -levels, id = d == 0 ? 0 : 1 / d
            let q = x.map { UInt8(min(2 * levels - 1, ($0 * id + levels + 0.5).rounded(.down))) }
            if type == .q4_0 { return (half(d) + (0..<16).map { q[$0] | q[$0 + 16] << 4 }, halfValue(d)) }
            var high: UInt32 = 0
            for j in 0..<32 where q[j] & 16 != 0 { high |= 1 << UInt32(j) }
            return (half(d) + GGUFBuilder.le(high) + (0..<16).map { (q[$0] & 15) | (q[$0 + 16] & 15) << 4 }, halfValue(d))
        case .q4_1, .q5_1:
            let levels: Float = type == .q4_1 ? 15 : 31
            let (low, high) = (x.min()!, x.max()!), d = (high - low) / levels, id = d == 0 ? 0 : 1 / d
            let q = x.map { UInt8(min(levels, (($0 - low) * id + 0.5).rounded(.down))) }
            if type == .q4_1 { return (half(d) + half(low) + (0..<16).map { q[$0] | q[$0 + 16] << 4 }, halfValue(d)) }
            var bits: UInt32 = 0
            for j in 0..<32 where q[j] & 16 != 0 { bits |= 1 << UInt32(j) }
            return (half(d) + half(low) + GGUFBuilder.le(bits) + (0..<16).map { (q[$0] & 15) | (q[$0 + 16] & 15) << 4 }, halfValue(d))
        default: preconditionFailure()
        }
    }

    /// A Q4_K or Q5_K super-block from chosen 6-bit scales and minimums and 4- or 5-bit values,
    /// with the values ggml's definition gives them: d·scale·q − dmin·min per sub-block of 32.
    static func kBlock(_ type: GGMLType, d: Float, dmin: Float, scales: [UInt8], mins: [UInt8], q: [UInt8]) -> (bytes: [UInt8], values: [Float]) {
        // Pack the 6-bit scales and minimums: sub-blocks 0–3 in the low six bits of bytes 0–3
        // (scales) and 4–7 (mins); 4–7 in the nibbles of bytes 8–11 with their top two bits in
        // the top bits of bytes 0–7.
        var packed = [UInt8](repeating: 0, count: 12)
        for j in 0..<8 {
            if j < 4 {
                packed[j] = scales[j]
                packed[j + 4] = mins[j]
            } else {
                packed[j + 4] = (scales[j] & 15) | (mins[j] & 15) << 4
                packed[j - 4] |= (scales[j] >> 4) << 6
                packed[j] |= (mins[j] >> 4) << 6
            }
        }
        var low = [UInt8](repeating: 0, count: 128), high = [UInt8](repeating: 0, count: 32)
        var values = [Float](repeating: 0, count: 256)
        let (dh, mh) = (halfValue(d), halfValue(dmin))
        for i in 0..<256 {
            let sub = i / 32, pass = i / 64, l = i % 32, upper = sub % 2 == 1
            let value = q[i]
            if upper { low[32 * pass + l] |= (value & 15) << 4 } else { low[32 * pass + l] |= value & 15 }
            if value & 16 != 0 { high[l] |= UInt8(1 << (2 * pass + (upper ? 1 : 0))) }
            values[i] = dh * Float(scales[sub]) * Float(value) - mh * Float(mins[sub])
        }
        let bytes = half(d) + half(dmin) + packed + (type == .q5_K ? high : []) + low
        return (bytes, values)
    }

    /// A Q6_K super-block from chosen signed scales (16) and 6-bit values (256).
    static func q6KBlock(d: Float, scales: [Int8], q: [UInt8]) -> (bytes: [UInt8], values: [Float]) {
        var low = [UInt8](repeating: 0, count: 128), high = [UInt8](repeating: 0, count: 64)
        var values = [Float](repeating: 0, count: 256)
        let dh = halfValue(d)
        for i in 0..<256 {
            // Halves of 128; in each, four groups of 32 share bytes: groups 0, 1 the low nibbles of
            // ql[l], ql[l + 32]; groups 2, 3 their high nibbles; the top two bits in qh[l] at 0, 2, 4, 6.
            let half = i / 128, group = (i % 128) / 32, l = i % 32
            let byte = 64 * half + l + (group % 2 == 1 ? 32 : 0)
            if group < 2 { low[byte] |= q[i] & 15 } else { low[byte] |= (q[i] & 15) << 4 }
            high[32 * half + l] |= (q[i] >> 4) << UInt8(2 * group)
            values[i] = dh * Float(scales[i / 16]) * Float(Int(q[i]) - 32)
        }
        return (low + high + scales.map { UInt8(bitPattern: $0) } + half(d), values)
    }
}

final class GGUFTests: TemporaryDirectoryTestCase {
    func write(_ builder: GGUFBuilder, _ name: String = "t.gguf") throws -> String {
        let path = directory + "/" + name
        try Data(builder.bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func error(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    /// Every tensor of the real K-quant file against gguf-py's dequantization, type by type.
    func testTheQ4KMFixtureDequantizesAsGGUFPyDoes() throws {
        let directory = try Fixtures.requireSharedData("smollm2-q4km")
        let file = try GGUFFile(path: directory + "/smollm2-2layer-q4_k_m.gguf")
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.metadata["general.architecture"]?.string, "llama")
        XCTAssertEqual(file.metadata["llama.block_count"]?.int, 2)
        XCTAssertEqual(file.metadata["llama.embedding_length"]?.int, 576)
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.strings?.count, 49_152)
        let types = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/tensor_types.json"))) as! [String: [String]]
        var checked = Set<String>()
        for (typeName, names) in types {
            for name in names {
                let tensor = try XCTUnwrap(file.tensor(name), name)
                XCTAssertEqual(tensor.type.description, typeName, name)
                let expected = try NPYFile(path: directory + "/dequantized/\(name).npy").floats()
                let rows = expected.count / tensor.rowLength
                var got = [Float](repeating: .nan, count: expected.count)
                try got.withUnsafeMutableBufferPointer { try file.dequantize(tensor, rows: 0..<rows, into: $0) }
                let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
                XCTAssertEqual(worst, 0, "\(name) (\(typeName)): max |Δ| \(worst) against gguf-py")
                checked.insert(typeName)
            }
        }
        XCTAssertEqual(checked, ["F32", "Q8_0", "Q5_0", "Q4_K", "Q6_K"])
        XCTAssertEqual(file.tensor("output.weight"), nil, "a tied head: no output.weight")
    }

    /// Legacy blocks from a quantizer, read back within half a quantization step; F16 and BF16
    /// exactly; K-quant blocks built from chosen codes give ggml's values.
    func testEveryTypeRoundTrips() throws {
        var generator = SeededGenerator(seed: 3)
        let rows = 3, columns = 256
        let values = (0..<(rows * columns)).map { _ in Float.random(in: -2...2, using: &generator) }
        var builder = GGUFBuilder()
        builder.key("general.architecture", string: "llama")
        var expected: [String: [Float]] = [:], tolerance: [String: [Float]] = [:]
        for type in [GGMLType.q8_0, .q4_0, .q4_1, .q5_0, .q5_1] {
            var bytes: [UInt8] = [], bound: [Float] = []
            for block in stride(from: 0, to: values.count, by: 32) {
                let (data, scale) = TestQuantizer.block(Array(values[block..<(block + 32)]), type)
                bytes += data
                // Half a step (plus the minimum's Float16 rounding); a whole step for Q4_0 and Q5_0,
                // whose range −8…7 (−16…15) clips the value opposite the largest by one step.
                let steps: Float = type == .q4_0 || type == .q5_0 ? 1 : 0.5
                bound += [Float](repeating: steps * abs(scale) + 2e-3, count: 32)
            }
            builder.tensors.append(("\(type)", [columns, rows], type.rawValue, bytes))
            expected["\(type)"] = values
            tolerance["\(type)"] = bound
        }
        let halves = values.map { Float(Float16($0)) }
        builder.tensors.append(("F16", [columns, rows], GGMLType.f16.rawValue, halves.flatMap { GGUFBuilder.le(Float16($0).bitPattern) }))
        expected["F16"] = halves
        let brains = values.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) }
        builder.tensors.append(("BF16", [columns, rows], GGMLType.bf16.rawValue, brains.flatMap { GGUFBuilder.le(UInt16($0.bitPattern >> 16)) }))
        expected["BF16"] = brains
        builder.tensors.append(("F32", [columns, rows], GGMLType.f32.rawValue, values.flatMap { GGUFBuilder.le($0.bitPattern) }))
        expected["F32"] = values
        for type in [GGMLType.q4_K, .q5_K] {
            var bytes: [UInt8] = [], decoded: [Float] = []
            for _ in 0..<rows {
                let scales = (0..<8).map { _ in UInt8.random(in: 0...63, using: &generator) }
                let mins = (0..<8).map { _ in UInt8.random(in: 0...63, using: &generator) }
                let q = (0..<256).map { _ in UInt8.random(in: 0...(type == .q4_K ? 15 : 31), using: &generator) }
                let block = TestQuantizer.kBlock(type, d: 0.013, dmin: 0.007, scales: scales, mins: mins, q: q)
                bytes += block.bytes
                decoded += block.values
            }
            builder.tensors.append(("\(type)", [columns, rows], type.rawValue, bytes))
            expected["\(type)"] = decoded
        }
        var q6Bytes: [UInt8] = [], q6Values: [Float] = []
        for _ in 0..<rows {
            let block = TestQuantizer.q6KBlock(d: 0.011, scales: (0..<16).map { _ in Int8.random(in: -128...127, using: &generator) },
                                               q: (0..<256).map { _ in UInt8.random(in: 0...63, using: &generator) })
            q6Bytes += block.bytes
            q6Values += block.values
        }
        builder.tensors.append(("Q6_K", [columns, rows], GGMLType.q6_K.rawValue, q6Bytes))
        expected["Q6_K"] = q6Values
        let file = try GGUFFile(path: try write(builder))
        XCTAssertEqual(Set(file.tensors.map(\.type)), Set(GGMLType.allCases), "every type is in the file")
        for tensor in file.tensors {
            XCTAssertEqual(tensor.shape, [rows, columns])
            let got = try file.floats(tensor.name), want = expected[tensor.name]!
            let bounds = tolerance[tensor.name] ?? [Float](repeating: 0, count: want.count)
            let worst = zip(zip(got, want), bounds).map { abs($0.0 - $0.1) - $1 }.max()!
            XCTAssertLessThanOrEqual(worst, 0, "\(tensor.name): a value beyond its bound by \(worst)")
        }
        // Row ranges read the right blocks.
        let q5 = try XCTUnwrap(file.tensor("Q5_K"))
        var middle = [Float](repeating: 0, count: columns)
        try middle.withUnsafeMutableBufferPointer { try file.dequantize(q5, rows: 1..<2, into: $0) }
        XCTAssertEqual(middle, Array(expected["Q5_K"]![columns..<(2 * columns)]))
    }

    /// Corrupt or truncated files are errors naming the key or tensor and the byte, never a trap.
    func testBadFilesAreNamed() throws {
        var good = GGUFBuilder()
        good.key("general.architecture", string: "llama")
        good.key("tokenizer.ggml.tokens", strings: ["a", "b", "c"])
        good.tensors.append(("w", [32, 2], GGMLType.q8_0.rawValue, [UInt8](repeating: 1, count: 68)))
        good.tensors.append(("v", [4], GGMLType.f32.rawValue, [UInt8](repeating: 0, count: 16)))
        let bytes = good.bytes
        XCTAssertNoThrow(try GGUFFile(path: try write(good)))
        // Every prefix of a valid file is refused with a message.
        let dataEnd = bytes.count - 16  // the last tensor's 16 bytes end here; padding follows
        for length in 0..<dataEnd where length % 3 == 0 || length > dataEnd - 40 {
            let path = directory + "/prefix.gguf"
            try Data(bytes[0..<length]).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try GGUFFile(path: path), "a prefix of \(length) bytes")
        }
        var cases: [(GGUFBuilder, String)] = []
        var version = good; version.version = 1
        cases.append((version, "GGUF version 1 at byte 4 is not supported"))
        var type = good; type.tensors[0].type = 20
        cases.append((type, "tensor 'w' (info at byte"))
        var misaligned = good; misaligned.offsets["v"] = 8
        cases.append((misaligned, "data offset 8 is not a multiple of the alignment 32"))
        var overlap = good; overlap.offsets["v"] = 64; overlap.tensors[1].dimensions = [32]
        cases.append((overlap, "truncated"))
        var rows = good; rows.tensors[0].dimensions = [33, 2]
        cases.append((rows, "rows of 33 values are not whole Q8_0 blocks of 32"))
        var huge = good; huge.tensors[0].dimensions = [1 << 40, 1 << 40]
        cases.append((huge, "tensor 'w'"))
        var twice = good; twice.tensors[1].name = "w"
        cases.append((twice, "appears twice"))
        var key = good; key.keys.append(("general.alignment", 4, GGUFBuilder.le(UInt32(3))))
        cases.append((key, "'general.alignment' is 3, not a power of two"))
        for (builder, message) in cases {
            let text = error { _ = try GGUFFile(path: try write(builder, "bad.gguf")) }
            XCTAssertTrue(text.contains(message), "expected '\(message)', got: \(text)")
        }
        // A count far beyond the file, and a wrong magic.
        var counts = Array(bytes)
        counts.replaceSubrange(8..<16, with: GGUFBuilder.le(UInt64.max))
        try Data(counts).write(to: URL(fileURLWithPath: directory + "/count.gguf"))
        XCTAssertTrue(error { _ = try GGUFFile(path: directory + "/count.gguf") }.contains("the tensor count at byte 8"))
        try Data("GGML".utf8 + bytes.dropFirst(4)).write(to: URL(fileURLWithPath: directory + "/magic.gguf"))
        XCTAssertTrue(error { _ = try GGUFFile(path: directory + "/magic.gguf") }.contains("not a GGUF file"))
    }
}
