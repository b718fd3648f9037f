import Foundation

/// Writes a GGUF file (version 3) that ``GGUFFile`` and llama.cpp read: metadata keys in the
/// order they were added, then the tensor infos, then each tensor's blocks at the next offset
/// aligned to `general.alignment` (32). The file is streamed under a temporary name and renamed
/// when complete (``AtomicFile``), so an interrupted export leaves nothing behind.
public struct GGUFWriter {
    /// A tensor to write: its name, row-major shape (outermost first, as ``GGUFTensorInfo/shape``),
    /// its type and its bytes in that type.
    public struct Tensor {
        public let name: String
        public let shape: [Int]
        public let type: GGMLType
        public let bytes: [UInt8]

        public init(name: String, shape: [Int], type: GGMLType, bytes: [UInt8]) {
            (self.name, self.shape, self.type, self.bytes) = (name, shape, type, bytes)
        }
    }

    public static let alignment = 32
    private var header: [UInt8] = []
    private var keyCount = 0
    public private(set) var tensors: [Tensor] = []

    public init() {}

    // GGUF value type codes.
    private enum Code: UInt32 { case u32 = 4, i32 = 5, f32 = 6, bool = 7, string = 8, array = 9 }

    private static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    private static func string(_ text: String) -> [UInt8] { le(UInt64(text.utf8.count)) + Array(text.utf8) }

    private mutating func key(_ name: String, _ code: Code, _ payload: [UInt8]) {
        header += Self.string(name) + Self.le(code.rawValue) + payload
        keyCount += 1
    }

    public mutating func set(_ name: String, u32 value: UInt32) { key(name, .u32, Self.le(value)) }
    public mutating func set(_ name: String, f32 value: Float) { key(name, .f32, Self.le(value.bitPattern)) }
    public mutating func set(_ name: String, bool value: Bool) { key(name, .bool, [value ? 1 : 0]) }
    public mutating func set(_ name: String, string value: String) { key(name, .string, Self.string(value)) }
    public mutating func set(_ name: String, strings values: [String]) {
        var payload = Self.le(Code.string.rawValue) + Self.le(UInt64(values.count))
        for value in values { payload += Self.string(value) }
        key(name, .array, payload)
    }
    public mutating func set(_ name: String, int32s values: [Int32]) {
        var payload = Self.le(Code.i32.rawValue) + Self.le(UInt64(values.count))
        payload.reserveCapacity(payload.count + 4 * values.count)
        for value in values { payload += Self.le(value) }
        key(name, .array, payload)
    }
    public mutating func set(_ name: String, f32s values: [Float]) {
        var payload = Self.le(Code.f32.rawValue) + Self.le(UInt64(values.count))
        for value in values { payload += Self.le(value.bitPattern) }
        key(name, .array, payload)
    }

    /// Adds a tensor; its byte count must be what its type takes for its shape.
    public mutating func add(_ tensor: Tensor) throws {
        let count = tensor.shape.reduce(1, *)
        guard let expected = tensor.type.byteCount(values: count), expected == tensor.bytes.count,
              tensor.shape.last.map({ $0 % tensor.type.blockSize == 0 }) ?? false else {
            throw TensorFileError(path: tensor.name, "\(tensor.bytes.count) bytes of \(tensor.type) for shape \(tensor.shape): not whole blocks of the type")
        }
        tensors.append(tensor)
    }

    /// Writes the file at `path` (complete, or not at all).
    public func write(to path: String) throws {
        var head = Array("GGUF".utf8) + Self.le(UInt32(3)) + Self.le(UInt64(tensors.count)) + Self.le(UInt64(keyCount)) + header
        var offset = 0
        for tensor in tensors {
            head += Self.string(tensor.name) + Self.le(UInt32(tensor.shape.count))
            for dimension in tensor.shape.reversed() { head += Self.le(UInt64(dimension)) }  // innermost first
            head += Self.le(tensor.type.rawValue) + Self.le(UInt64(offset))
            offset = Self.aligned(offset + tensor.bytes.count)
        }
        head += [UInt8](repeating: 0, count: Self.aligned(head.count) - head.count)
        try AtomicFile.write(to: path) { handle in
            try handle.write(contentsOf: head)
            for tensor in tensors {
                try handle.write(contentsOf: tensor.bytes)
                let padding = Self.aligned(tensor.bytes.count) - tensor.bytes.count
                if padding > 0 { try handle.write(contentsOf: [UInt8](repeating: 0, count: padding)) }
            }
        }
    }

    private static func aligned(_ offset: Int) -> Int { (offset + alignment - 1) / alignment * alignment }
}
