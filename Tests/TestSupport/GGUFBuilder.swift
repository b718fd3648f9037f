import Foundation

/// Builds GGUF files byte by byte for the tests: keys and tensors as given, aligned as the format asks.
public struct GGUFBuilder {
    public var version: UInt32 = 3
    public var alignment = 32
    public var keys: [(name: String, type: UInt32, payload: [UInt8])] = []
    public var tensors: [(name: String, dimensions: [Int], type: UInt32, blocks: [UInt8])] = []
    /// Overrides a tensor's data offset (for corrupt files); nil: the next aligned one.
    public var offsets: [String: UInt64] = [:]

    public static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    public static func string(_ text: String) -> [UInt8] { le(UInt64(text.utf8.count)) + Array(text.utf8) }

    public mutating func key(_ name: String, u32 value: UInt32) { keys.append((name, 4, Self.le(value))) }
    public mutating func key(_ name: String, string value: String) { keys.append((name, 8, Self.string(value))) }
    public mutating func key(_ name: String, strings values: [String]) {
        keys.append((name, 9, Self.le(UInt32(8)) + Self.le(UInt64(values.count)) + values.flatMap(Self.string)))
    }

    public init() {}

    /// An array key of one element type (GGUF type code `elementType`, payloads concatenated).
    public mutating func key(_ name: String, array elementType: UInt32, count: Int, payload: [UInt8]) {
        keys.append((name, 9, Self.le(elementType) + Self.le(UInt64(count)) + payload))
    }
    public mutating func key(_ name: String, bool value: Bool) { keys.append((name, 7, [value ? 1 : 0])) }
    public mutating func key(_ name: String, floats values: [Float]) {
        key(name, array: 6, count: values.count, payload: values.flatMap { Self.le($0.bitPattern) })
    }
    public mutating func key(_ name: String, int32s values: [Int32]) {
        key(name, array: 5, count: values.count, payload: values.flatMap { Self.le($0) })
    }

    public var bytes: [UInt8] {
        var out = Array("GGUF".utf8) + Self.le(version) + Self.le(UInt64(tensors.count)) + Self.le(UInt64(keys.count))
        for key in keys { out += Self.string(key.name) + Self.le(key.type) + key.payload }
        // Each tensor at the next aligned offset of the data section, in order.
        var offset = 0
        for tensor in tensors {
            out += Self.string(tensor.name) + Self.le(UInt32(tensor.dimensions.count)) + tensor.dimensions.flatMap { Self.le(UInt64($0)) }
            out += Self.le(tensor.type) + Self.le(offsets[tensor.name] ?? UInt64(offset))
            offset += (tensor.blocks.count + alignment - 1) / alignment * alignment
        }
        while out.count % alignment != 0 { out.append(0) }
        for tensor in tensors {
            out += tensor.blocks
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }
}

