import Foundation

/// A NumPy `.npy` array file, read through a memory map.
///
/// Format: the magic `\x93NUMPY`, a version byte pair, a header length (2 bytes in version 1,
/// 4 bytes in versions 2 and 3), and a Python dict literal such as
/// `{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces to a 64-byte
/// boundary; then the raw data. Little-endian and C order only: anything else is refused with
/// a message naming the file and the key.
public struct NPYFile {
    public let path: String
    public let type: ElementType
    public let shape: [Int]
    private let file: MappedFile
    private let dataStart: Int

    public var elementCount: Int { shape.reduce(1, *) }

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw TensorFileError(path: path, "not an NPY file (missing the \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw TensorFileError(path: path, "truncated NPY preamble") }
            headerLength = Int(bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian)
            headerStart = 12
        default:
            throw TensorFileError(path: path, "unsupported NPY version \(major)")
        }
        guard headerStart + headerLength <= bytes.count else {
            throw TensorFileError(path: path, "truncated: header of \(headerLength) bytes runs past the end of the file")
        }
        guard let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw TensorFileError(path: path, "header is not text")
        }
        let fields = try NPYHeader.parse(header, path: path)
        type = fields.type
        shape = fields.shape
        dataStart = headerStart + headerLength
        guard let elements = ShapeText.elementCount(shape), let needed = ShapeText.elementCount([elements, type.byteCount]) else {
            throw TensorFileError(path: path, "shape \(ShapeText.abbreviated(shape)) has more elements than any file can hold")
        }
        guard bytes.count - dataStart >= needed else {
            throw TensorFileError(path: path, "truncated: shape \(ShapeText.abbreviated(shape)) of \(fields.descr) needs \(needed) bytes of data, file has \(bytes.count - dataStart)")
        }
    }

    /// Stops, naming the file, when it shrank while mapped (truncated or rewritten in place by
    /// another program): what was read from it since is not the file's. Call after reading.
    public func requireIntact() throws { try file.requireIntact() }

    /// The elements as Float (integers converted by value).
    public func floats() -> [Float] {
        ElementDecoding.floats(from: raw, type: type, count: elementCount)
    }

    /// The elements as Int; integer and bool arrays only.
    public func integers() throws -> [Int] {
        guard !type.isFloatingPoint else {
            throw TensorFileError(path: path, "array is \(type.rawValue), expected integers")
        }
        return ElementDecoding.integers(from: raw, type: type, count: elementCount)
    }

    /// Element `index` (in C order) of an integer array, read from the map: random access
    /// without reading the file whole.
    public func integer(at index: Int) -> Int {
        precondition(!type.isFloatingPoint && index >= 0 && index < elementCount, "NPYFile.integer(at:): \(index) in a \(type.rawValue) array of \(elementCount)")
        return ElementDecoding.integer(from: raw, type: type, at: index)
    }

    private var raw: UnsafeRawPointer {
        file.bytes.baseAddress.map { $0 + dataStart } ?? UnsafeRawPointer(bitPattern: 1)!
    }
}

/// Parsing and writing of the NPY header dict.
enum NPYHeader {
    static let descriptors: [String: ElementType] = [
        "<f4": .float32, "<f8": .float64, "<f2": .float16, "<i8": .int64, "<i4": .int32, "<i2": .int16,
        "|i1": .int8, "<i1": .int8, "<u2": .uint16, "|u1": .uint8, "<u1": .uint8, "|b1": .bool,
    ]

    static func parse(_ header: String, path: String) throws -> (descr: String, type: ElementType, shape: [Int]) {
        func value(of key: String) throws -> Substring {
            guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\""),
                  let colon = header[keyRange.upperBound...].firstIndex(of: ":") else {
                throw TensorFileError(path: path, "header has no '\(key)' key")
            }
            return header[header.index(after: colon)...].drop(while: { $0 == " " })
        }
        let descrText = try value(of: "descr")
        guard let quote = descrText.first, quote == "'" || quote == "\"",
              let end = descrText.dropFirst().firstIndex(of: quote) else {
            throw TensorFileError(path: path, "header key 'descr' is not a string")
        }
        let descr = String(descrText[descrText.index(after: descrText.startIndex)..<end])
        guard let type = descriptors[descr] else {
            throw TensorFileError(path: path, "unsupported dtype descr '\(descr)' (little-endian f2/f4/f8, i1–i8, u1, u2, b1 only)")
        }
        let order = try value(of: "fortran_order")
        guard order.hasPrefix("False") || order.hasPrefix("0") else {
            throw TensorFileError(path: path, "'fortran_order': \(order.prefix(while: { $0 != "," && $0 != "}" })) is not supported; save a C-ordered array")
        }
        let shapeText = try value(of: "shape")
        guard shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
            throw TensorFileError(path: path, "header key 'shape' is not a tuple")
        }
        let items = shapeText[shapeText.index(after: shapeText.startIndex)..<close]
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for item in items {
            guard let dimension = Int(item.hasSuffix("L") ? String(item.dropLast()) : item), dimension >= 0 else {
                throw TensorFileError(path: path, "header key 'shape' has a bad dimension '\(item)'")
            }
            shape.append(dimension)
        }
        return (descr, type, shape)
    }

    /// A version-1 header for `descr` and `shape`, padded so the data starts on a 64-byte boundary.
    static func encode(descr: String, shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let length = UInt16(dict.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(dict.utf8))
        return data
    }
}

/// Writes NPY files atomically (temporary file, then rename).
public enum NPYWriter {
    /// float32 values in C order.
    public static func write(_ values: [Float], shape: [Int], to path: String) throws {
        try write(values, descr: "<f4", shape: shape, to: path)
    }

    /// int32 values in C order.
    public static func write(_ values: [Int32], shape: [Int], to path: String) throws {
        try write(values, descr: "<i4", shape: shape, to: path)
    }

    private static func write<T>(_ values: [T], descr: String, shape: [Int], to path: String) throws {
        precondition(shape.reduce(1, *) == values.count, "NPYWriter: shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        var data = NPYHeader.encode(descr: descr, shape: shape)
        values.withUnsafeBytes { data.append(contentsOf: $0) }  // little-endian hosts
        try AtomicFile.write(data, to: path)
    }
}
