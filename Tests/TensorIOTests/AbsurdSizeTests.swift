import Foundation
import TensorIO
import TestSupport
import XCTest

/// Headers that are well-formed but absurd: errors, short messages, no traps.
final class AbsurdSizeTests: TemporaryDirectoryTestCase {
    /// An NPY file with this header dict and a few bytes of data.
    func npy(_ name: String, _ dict: String) throws -> String {
        var header = dict
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        data.append(Data(header.utf8))
        data.append(Data(repeating: 0, count: 16))
        let path = directory + "/" + name
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A safetensors file with this header and `payload` zero bytes of data.
    func safetensors(_ name: String, header: String, payload: Int) throws -> String {
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        data.append(Data(repeating: 0, count: payload))
        let path = directory + "/" + name
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func error(_ body: () throws -> Any) -> String {
        do { _ = try body() } catch { return "\(error)" }
        return "no error"
    }

    func testNPYShapesWhoseSizeOverflowAreErrors() throws {
        for shape in ["(4611686018427387904,)", "(4294967296, 4294967296, 4)"] {
            let path = try npy("big.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': \(shape), }")
            XCTAssertTrue(error { try NPYFile(path: path) }.contains("more elements than any file can hold"), shape)
        }
    }

    func testFortranOrderOtherThanFalseIsRefused() throws {
        let path = try npy("f.npy", "{'descr': '<i4', 'fortran_order': 1, 'shape': (2,), }")
        XCTAssertTrue(error { try NPYFile(path: path) }.contains("'fortran_order': 1 is not supported"))
    }

    func testSafeTensorsShapesAreAbbreviatedInErrors() throws {
        let dims = Array(repeating: "2", count: 100_000).joined(separator: ",")
        let path = try safetensors("many-dims.safetensors", header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[\(dims)],\"data_offsets\":[0,4]}}", payload: 4)
        let message = error { try SafeTensorsFile(path: path) }
        XCTAssertTrue(message.contains("(100000 dimensions)"), message)
        XCTAssertLessThan(message.count, 300, "a short message, not the whole shape")
    }

    func testHugeHeadersAreReadWithoutATreeOfObjects() throws {
        // 300,000 entries (a 17 MB header) that all claim the same bytes: refused as overlapping,
        // after a scan that holds only the entries themselves.
        var header = "{"
        for i in 0..<300_000 { header += (i == 0 ? "" : ",") + "\"tensor.\(i)\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}" }
        header += "}"
        let path = try safetensors("huge.safetensors", header: header, payload: 4)
        XCTAssertTrue(error { try SafeTensorsFile(path: path) }.contains("overlap"))
    }

    func testARepeatedTensorNameIsAnError() throws {
        let header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
        let path = try safetensors("twice.safetensors", header: header, payload: 4)
        XCTAssertTrue(error { try SafeTensorsFile(path: path) }.contains("tensor 'w' appears twice"))
    }

    func testTemporaryFilesAreRemovedOnRequest() throws {
        let path = directory + "/.partial.tmp"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])))
        let slot = TemporaryFiles.register(path)
        TemporaryFiles.removeRegistered()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "what a SIGINT or SIGTERM handler does")
        TemporaryFiles.unregister(slot)
        let writer = try NPYStreamWriter(int32At: directory + "/ids.npy")
        try writer.append([1, 2, 3])
        writer.cancel()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [], "a cancelled stream leaves nothing")
    }
}
