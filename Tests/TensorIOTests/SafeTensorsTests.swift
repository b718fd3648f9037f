import Foundation
import Kernels
import TensorIO
import TestSupport
import XCTest

final class SafeTensorsTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Builds a file from a raw header object and payload, for the malformed cases.
    func writeRaw(_ name: String, header: String, payload: [UInt8] = [], declaredLength: UInt64? = nil) throws -> String {
        var data = Data()
        let headerBytes = Data(header.utf8)
        withUnsafeBytes(of: (declaredLength ?? UInt64(headerBytes.count)).littleEndian) { data.append(contentsOf: $0) }
        data.append(headerBytes)
        data.append(contentsOf: payload)
        try data.write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    func assertError(_ body: @autoclosure () throws -> Any, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(text), "error '\(error)' should mention '\(text)'", file: file, line: line)
        }
    }

    func testRoundTripKeepsNamesShapesAndValues() throws {
        var rng = SeededGenerator(seed: 1)
        let tensors = [NamedTensor(name: "a.weight", shape: [3, 5], values: rng.uniform(15)),
                       NamedTensor(name: "b", shape: [7], values: rng.uniform(7)),
                       NamedTensor(name: "empty", shape: [0, 4], values: [])]
        try SafeTensorsWriter.write(tensors, metadata: ["format": "pt"], to: path("t.safetensors"))
        let file = try SafeTensorsFile(path: path("t.safetensors"))
        XCTAssertEqual(file.metadata, ["format": "pt"])
        for tensor in tensors {
            XCTAssertEqual(try file.entry(tensor.name).shape, tensor.shape)
            XCTAssertEqual(try file.floats(tensor.name), tensor.values)
        }
        // The data section starts on an 8-byte boundary, as the reference writer does.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path("t.safetensors")))
        let headerLength = bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual((8 + headerLength) % 8, 0)
    }

    func testHalfAndBFloat16AreUpcastExactly() throws {
        // 1.0, −2.5, 65504 (max half), 2^−24 (smallest subnormal) in F16; 1.0, −2.5, 3.0e38-ish in BF16.
        let half: [UInt16] = [0x3C00, 0xC100, 0x7BFF, 0x0001]
        let bf16: [UInt16] = [0x3F80, 0xC020, 0x7F61]
        var payload: [UInt8] = []
        for value in half + bf16 { payload += [UInt8(value & 0xFF), UInt8(value >> 8)] }
        let header = #"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}}"#
        let file = try SafeTensorsFile(path: try writeRaw("h.safetensors", header: header, payload: payload))
        XCTAssertEqual(try file.floats("h"), [1, -2.5, 65504, Float(sign: .plus, exponent: -24, significand: 1)])
        XCTAssertEqual(try file.floats("b"), [1, -2.5, Float(bitPattern: 0x7F61_0000)])
    }

    func testMalformedFilesAreReportedWithTheProblem() throws {
        let tensor = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        assertError(try SafeTensorsFile(path: self.path("missing.safetensors")), contains: "cannot open")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path("short")))
        assertError(try SafeTensorsFile(path: self.path("short")), contains: "truncated")
        assertError(try SafeTensorsFile(path: try writeRaw("empty-header", header: "")), contains: "not valid JSON")
        assertError(try SafeTensorsFile(path: try writeRaw("big", header: "{}", declaredLength: 200_000_000)), contains: "limit")
        assertError(try SafeTensorsFile(path: try writeRaw("over", header: "{}", declaredLength: 50)), contains: "truncated")
        assertError(try SafeTensorsFile(path: try writeRaw("json", header: "{not json")), contains: "not valid JSON")
        assertError(try SafeTensorsFile(path: try writeRaw("cut", header: tensor, payload: [0, 0, 0])), contains: "truncated: tensor 'w'")
        assertError(try SafeTensorsFile(path: try writeRaw("dtype", header: #"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#, payload: [UInt8](repeating: 0, count: 8))),
                    contains: "unknown dtype 'Q4'")
        assertError(try SafeTensorsFile(path: try writeRaw("size", header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, payload: [UInt8](repeating: 0, count: 8))),
                    contains: "tensor 'w'")
        assertError(try SafeTensorsFile(path: try writeRaw("overlap", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, payload: [UInt8](repeating: 0, count: 8))),
                    contains: "overlap")
        let good = try SafeTensorsFile(path: try writeRaw("good", header: tensor, payload: [UInt8](repeating: 0, count: 8)))
        assertError(try good.floats("nothere"), contains: "missing tensor 'nothere'")
        assertError(try good.floats("w", shape: [1, 2]), contains: "has shape [2], expected [1, 2]")
    }

    func testWriteIsAtomic() throws {
        // A failed write (directory does not exist) leaves nothing behind and says why.
        let target = directory.appendingPathComponent("no/such/dir/out.safetensors").path
        XCTAssertThrowsError(try SafeTensorsWriter.write([NamedTensor(name: "x", shape: [1], values: [1])], to: target))
        XCTAssertFalse(FileManager.default.fileExists(atPath: target))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [])
    }
}
