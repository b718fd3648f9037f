import Foundation

/// A tensor to write: a name, a shape and Float32 values in row-major order.
public struct NamedTensor: Sendable {
    public let name: String
    public let shape: [Int]
    public let values: [Float]
    public init(name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count,
                     "NamedTensor '\(name)': shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// Writes F32 safetensors files, atomically (temporary file, then rename).
public enum SafeTensorsWriter {
    /// Serialises `tensors` in the given order, header padded with spaces to an 8-byte boundary
    /// as the reference implementation does, so the data section is aligned.
    public static func data(_ tensors: [NamedTensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for tensor in tensors {
            let byteCount = tensor.values.count * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + byteCount]]
            offset += byteCount
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        let padding = (8 - headerBytes.count % 8) % 8
        headerBytes.append(contentsOf: [UInt8](repeating: 0x20, count: padding))
        var output = Data()
        output.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { output.append(contentsOf: $0) }
        output.append(headerBytes)
        for tensor in tensors where !tensor.values.isEmpty {
            tensor.values.withUnsafeBufferPointer { values in
                // Little-endian hosts only (x86_64, arm64): Float's in-memory bytes are the format.
                output.append(UnsafeBufferPointer(start: UnsafeRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt8.self), count: values.count * 4))
            }
        }
        return output
    }

    public static func write(_ tensors: [NamedTensor], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(try data(tensors, metadata: metadata), to: path)
    }
}
