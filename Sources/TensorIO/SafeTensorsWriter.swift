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

/// A tensor to write without copying it: a name, a shape and a view of Float32 values in
/// row-major order (valid for the duration of the write).
public struct TensorView {
    public let name: String
    public let shape: [Int]
    public let values: UnsafeBufferPointer<Float>
    public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
        precondition(shape.reduce(1, *) == values.count,
                     "TensorView '\(name)': shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// Writes F32 safetensors files, atomically (temporary file, then rename).
public enum SafeTensorsWriter {
    /// The header (length prefix included) for tensors of these names and shapes in this order,
    /// padded with spaces to an 8-byte boundary as the reference implementation does, so the data
    /// section is aligned.
    static func header(_ tensors: [(name: String, shape: [Int])], metadata: [String: String]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for tensor in tensors {
            let byteCount = tensor.shape.reduce(1, *) * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + byteCount]]
            offset += byteCount
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        headerBytes.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - headerBytes.count % 8) % 8))
        var output = Data()
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { output.append(contentsOf: $0) }
        output.append(headerBytes)
        return output
    }

    /// The whole file in memory (small files and tests).
    public static func data(_ tensors: [NamedTensor], metadata: [String: String] = [:]) throws -> Data {
        var output = try header(tensors.map { ($0.name, $0.shape) }, metadata: metadata)
        // Little-endian hosts only (x86_64, arm64): Float's in-memory bytes are the format.
        for tensor in tensors { tensor.values.withUnsafeBytes { output.append(contentsOf: $0) } }
        return output
    }

    public static func write(_ tensors: [NamedTensor], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(try data(tensors, metadata: metadata), to: path)
    }

    /// Writes tensors of these names and shapes, each filled just before it is written by
    /// `fill(index, buffer)` into one buffer reused for all (sized for the largest tensor): a file
    /// whose tensors are assembled on the fly (gathered from other processes) costs one tensor of
    /// memory, not the file.
    public static func write(shapes tensors: [(name: String, shape: [Int])], metadata: [String: String] = [:], to path: String,
                             fill: (Int, UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        let head = try header(tensors, metadata: metadata)
        let largest = tensors.map { $0.shape.reduce(1, *) }.max() ?? 0
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(largest, 1))
        defer { buffer.deallocate() }
        try AtomicFile.write(to: path) { handle in
            try handle.write(contentsOf: head)
            for (index, tensor) in tensors.enumerated() {
                let part = UnsafeMutableBufferPointer(rebasing: buffer[0..<tensor.shape.reduce(1, *)])
                guard !part.isEmpty else { continue }
                try fill(index, part)
                try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(part.baseAddress!), count: part.count * 4, deallocator: .none))
            }
        }
    }

    /// Streams `tensors` from their views to the file: no copy of the data is made, so saving a
    /// model (or its gradients, or optimizer moments) costs no extra memory.
    public static func write(views tensors: [TensorView], metadata: [String: String] = [:], to path: String) throws {
        let head = try header(tensors.map { ($0.name, $0.shape) }, metadata: metadata)
        try AtomicFile.write(to: path) { handle in
            try handle.write(contentsOf: head)
            for tensor in tensors where !tensor.values.isEmpty {
                // In pieces of at most 64 MiB: Data(bytesNoCopy:) wraps the view without copying.
                let bytes = UnsafeRawBufferPointer(tensor.values)
                var start = 0
                while start < bytes.count {
                    let end = min(bytes.count, start + (64 << 20))
                    let piece = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: bytes.baseAddress! + start), count: end - start,
                                     deallocator: .none)
                    try handle.write(contentsOf: piece)
                    start = end
                }
            }
        }
    }
}
