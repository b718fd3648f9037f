import Foundation

/// One tensor of a GGUF file: where its blocks lie and what they hold.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml's dimensions, innermost first: `dimensions[0]` is the length of a row.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Bytes from the start of the file to the tensor's first block.
    public let fileOffset: Int
    public let byteCount: Int

    /// Row-major shape, outermost first (PyTorch's order): `[rows, columns]` for a matrix.
    public var shape: [Int] { dimensions.reversed() }
    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Values in one row (`dimensions[0]`), and rows (the product of the others).
    public var rowLength: Int { dimensions.first ?? 1 }
    public var rowCount: Int { dimensions.dropFirst().reduce(1, *) }
}

/// A GGUF file (llama.cpp's model format, versions 2 and 3): its metadata and tensor infos,
/// parsed and checked, and its data memory-mapped, never copied. Every count, length, offset and
/// alignment is checked against the file before it is used (overflow-checked, bounded by the
/// file's size); a problem is a `TensorFileError` naming the key or tensor and the byte offset.
///
/// Layout: magic `GGUF`, version, tensor count, key count; the keys (string, type, value); the
/// tensor infos (name, dimension count, dimensions innermost first, type, offset); padding to
/// `general.alignment` (default 32); the tensors' blocks, each at an aligned offset from there.
public final class GGUFFile: Sendable {
    public let path: String
    public let version: Int
    /// Every metadata key and its value.
    public let metadata: [String: GGUFValue]
    /// The keys in file order.
    public let keys: [String]
    /// The tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// The alignment of the data section and of every tensor in it.
    public let alignment: Int
    private let index: [String: Int]
    private let file: MappedFile

    /// Most keys and tensors a file may declare, far above any real model's (SmolLM2: 40 keys,
    /// 273 tensors); past these a count is corrupt.
    public static let maximumKeys = 1 << 16, maximumTensors = 1 << 20

    /// Stops, naming the file, when it shrank while mapped (truncated or rewritten in place by
    /// another program): what was read from it since is not the file's. Call after reading.
    public func requireIntact() throws { try file.requireIntact() }

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        var reader = Reader(bytes: file.bytes, path: path)
        guard file.bytes.count >= 4, try reader.u32() == 0x4655_4747 else {  // "GGUF", little-endian
            throw TensorFileError(path: path, "not a GGUF file (no 'GGUF' magic at byte 0)")
        }
        let version = try reader.u32()
        guard version == 2 || version == 3 else {
            throw TensorFileError(path: path, "GGUF version \(version) at byte 4 is not supported (versions 2 and 3 are)")
        }
        self.version = Int(version)
        let tensorCount = try reader.count(limit: Self.maximumTensors, "the tensor count")
        let keyCount = try reader.count(limit: Self.maximumKeys, "the metadata key count")
        var metadata: [String: GGUFValue] = [:], keys: [String] = []
        for _ in 0..<keyCount {
            let at = reader.offset
            let key = try reader.string("a metadata key")
            guard metadata[key] == nil else { throw TensorFileError(path: path, "metadata key '\(key)' appears twice (byte \(at))") }
            metadata[key] = try reader.value(of: try reader.u32(), key: key, depth: 0)
            keys.append(key)
        }
        self.metadata = metadata
        self.keys = keys
        if let value = metadata["general.alignment"] {
            guard let alignment = value.int, alignment > 0, alignment <= 1 << 20, alignment & (alignment - 1) == 0 else {
                throw TensorFileError(path: path, "metadata key 'general.alignment' is \(value.int.map(String.init) ?? "\(value)"), not a power of two up to 2^20")
            }
            self.alignment = alignment
        } else {
            alignment = 32
        }
        var infos: [(name: String, dimensions: [Int], type: UInt32, offset: UInt64, at: Int)] = []
        for _ in 0..<tensorCount {
            let at = reader.offset
            let name = try reader.string("a tensor name")
            let dimensionCount = try reader.u32()
            guard dimensionCount >= 1 && dimensionCount <= 4 else {
                throw TensorFileError(path: path, "tensor '\(name)' (byte \(at)) has \(dimensionCount) dimensions; GGUF allows 1 to 4")
            }
            var dimensions: [Int] = []
            for _ in 0..<dimensionCount {
                guard let dimension = Int(exactly: try reader.u64()), dimension >= 1 else {
                    throw TensorFileError(path: path, "tensor '\(name)' (byte \(at)) has a dimension that is zero or beyond 2^63")
                }
                dimensions.append(dimension)
            }
            infos.append((name, dimensions, try reader.u32(), try reader.u64(), at))
        }
        // The data section starts at the next multiple of the alignment.
        let dataStart = (reader.offset + alignment - 1) / alignment * alignment
        guard dataStart <= file.bytes.count else {
            throw TensorFileError(path: path, "truncated: the data section would start at byte \(dataStart), the file has \(file.bytes.count)")
        }
        var tensors: [GGUFTensorInfo] = [], index: [String: Int] = [:]
        for info in infos {
            let where_ = "tensor '\(info.name)' (info at byte \(info.at))"
            guard index[info.name] == nil else { throw TensorFileError(path: path, "\(where_) appears twice") }
            guard let type = GGMLType(rawValue: info.type) else {
                throw TensorFileError(path: path, "\(where_) has ggml type \(info.type), which this reader does not decode (it reads \(GGMLType.allCases.map(\.description).joined(separator: ", ")))")
            }
            guard let elements = ShapeText.elementCount(info.dimensions) else {
                throw TensorFileError(path: path, "\(where_) has shape \(ShapeText.abbreviated(info.dimensions.reversed())), more elements than any file can hold")
            }
            guard info.dimensions[0] % type.blockSize == 0, let bytes = type.byteCount(values: elements) else {
                throw TensorFileError(path: path, "\(where_): rows of \(info.dimensions[0]) values are not whole \(type) blocks of \(type.blockSize)")
            }
            guard let offset = Int(exactly: info.offset), offset % alignment == 0 else {
                throw TensorFileError(path: path, "\(where_): data offset \(info.offset) is not a multiple of the alignment \(alignment)")
            }
            let (start, overflow) = dataStart.addingReportingOverflow(offset)
            guard !overflow, start <= file.bytes.count, bytes <= file.bytes.count - start else {
                throw TensorFileError(path: path, "truncated: \(where_) needs bytes \(dataStart) + \(offset) … + \(bytes), the file has \(file.bytes.count)")
            }
            index[info.name] = tensors.count
            tensors.append(GGUFTensorInfo(name: info.name, dimensions: info.dimensions, type: type, fileOffset: start, byteCount: bytes))
        }
        // Tensors may not share bytes (a corrupt offset would make one read another's blocks).
        let ordered = tensors.sorted { $0.fileOffset < $1.fileOffset }
        for (first, second) in zip(ordered, ordered.dropFirst()) where first.fileOffset + first.byteCount > second.fileOffset {
            throw TensorFileError(path: path, "tensors '\(first.name)' and '\(second.name)' overlap (bytes \(first.fileOffset) and \(second.fileOffset))")
        }
        self.tensors = tensors
        self.index = index
    }

    /// The tensor called `name`, or nil.
    public func tensor(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// The blocks of `tensor` as they lie in the mapped file (valid as long as this object).
    public func blocks(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[tensor.fileOffset..<(tensor.fileOffset + tensor.byteCount)])
    }

    /// Rows `rows` of `tensor` decoded to Float32 into `out` (`rows.count · rowLength` values).
    public func dequantize(_ tensor: GGUFTensorInfo, rows: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard rows.lowerBound >= 0, rows.upperBound <= tensor.rowCount, out.count == rows.count * tensor.rowLength else {
            throw TensorFileError(path: path, "tensor '\(tensor.name)': rows \(rows) of \(tensor.rowCount) into \(out.count) values")
        }
        let rowBytes = tensor.type.byteCount(values: tensor.rowLength)!
        let all = blocks(of: tensor)
        tensor.type.dequantize(UnsafeRawBufferPointer(rebasing: all[(rows.lowerBound * rowBytes)..<(rows.upperBound * rowBytes)]), into: out)
    }

    /// The whole of tensor `name` as Float32, row-major (`shape`).
    public func floats(_ name: String) throws -> [Float] {
        guard let tensor = tensor(name) else { throw TensorFileError(path: path, "no tensor '\(name)'") }
        return try [Float](unsafeUninitializedCapacity: tensor.elementCount) { out, initialized in
            try dequantize(tensor, rows: 0..<tensor.rowCount, into: out)
            initialized = tensor.elementCount
        }
    }

    /// A bounds-checked little-endian cursor over the header.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        let path: String
        var offset = 0

        init(bytes: UnsafeRawBufferPointer, path: String) {
            self.bytes = bytes
            self.path = path
        }

        mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
            guard count >= 0, count <= bytes.count - offset else {
                throw TensorFileError(path: path, "truncated: \(what()) at byte \(offset) needs \(count) bytes, \(bytes.count - offset) remain")
            }
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        }

        mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
            let raw = try take(MemoryLayout<T>.size, "a \(T.self)")
            return T(littleEndian: raw.loadUnaligned(as: T.self))
        }

        mutating func u32() throws -> UInt32 { try integer(UInt32.self) }
        mutating func u64() throws -> UInt64 { try integer(UInt64.self) }

        /// A uint64 count at most `limit`.
        mutating func count(limit: Int, _ what: String) throws -> Int {
            let at = offset, value = try u64()
            guard value <= UInt64(limit) else { throw TensorFileError(path: path, "\(what) at byte \(at) is \(value), more than \(limit)") }
            return Int(value)
        }

        /// A uint64 length and that many bytes of UTF-8.
        mutating func string(_ what: String) throws -> String {
            let at = offset, length = try u64()
            guard length <= UInt64(bytes.count - offset) else {
                throw TensorFileError(path: path, "truncated: \(what) at byte \(at) claims \(length) bytes, \(bytes.count - offset) remain")
            }
            let raw = try take(Int(length), what)
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw TensorFileError(path: path, "\(what) at byte \(at) is not UTF-8")
            }
            return text
        }

        /// A value of GGUF type `type` (arrays nest at most two deep).
        mutating func value(of type: UInt32, key: String, depth: Int) throws -> GGUFValue {
            switch type {
            case 0: return .unsigned(UInt64(try integer(UInt8.self)))
            case 1: return .signed(Int64(try integer(Int8.self)))
            case 2: return .unsigned(UInt64(try integer(UInt16.self)))
            case 3: return .signed(Int64(try integer(Int16.self)))
            case 4: return .unsigned(UInt64(try u32()))
            case 5: return .signed(Int64(try integer(Int32.self)))
            case 6: return .float(Double(Float(bitPattern: try u32())))
            case 7:
                let at = offset, byte = try integer(UInt8.self)
                guard byte <= 1 else { throw TensorFileError(path: path, "metadata key '\(key)': bool at byte \(at) is \(byte)") }
                return .bool(byte == 1)
            case 8: return .string(try string("the value of '\(key)'"))
            case 9:
                let at = offset
                guard depth < 2 else { throw TensorFileError(path: path, "metadata key '\(key)': arrays nested more than two deep (byte \(at))") }
                let itemType = try u32(), count = try u64()
                // Every item takes at least one byte: a count beyond the bytes left is corrupt.
                guard count <= UInt64(bytes.count - offset) else {
                    throw TensorFileError(path: path, "truncated: metadata key '\(key)' claims an array of \(count) items at byte \(at), \(bytes.count - offset) bytes remain")
                }
                var items: [GGUFValue] = []
                items.reserveCapacity(Int(count))
                for _ in 0..<Int(count) { items.append(try value(of: itemType, key: key, depth: depth + 1)) }
                return .array(items)
            case 10: return .unsigned(try u64())
            case 11: return .signed(try integer(Int64.self))
            case 12: return .float(Double(bitPattern: try u64()))
            default:
                throw TensorFileError(path: path, "metadata key '\(key)' has value type \(type) at byte \(offset - 4), not a GGUF type (0…12)")
            }
        }
    }
}
