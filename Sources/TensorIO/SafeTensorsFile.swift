import Foundation

/// One tensor's entry in a safetensors header.
public struct TensorEntry: Sendable, Equatable {
    public let name: String
    public let type: ElementType
    public let shape: [Int]
    /// Byte range within the data section (after the header).
    public let byteRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file opened read-only through a memory map.
///
/// Format: an 8-byte little-endian header length, a JSON header mapping each tensor name to
/// `{"dtype", "shape", "data_offsets": [begin, end]}` (plus optional `__metadata__`), then the
/// raw little-endian data. Every entry is validated on open, so later reads cannot run past the
/// file: a truncated or corrupt file is reported with the tensor concerned.
///
/// Sendable: every stored property is immutable after `init`, and the map is read-only.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Headers larger than this are refused (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    /// Entries in file order.
    public let entries: [TensorEntry]
    public let metadata: [String: String]
    private let index: [String: Int]
    private let file: MappedFile
    private let dataStart: Int

    /// Stops, naming the file, when it shrank while mapped (truncated or rewritten in place by
    /// another program): what was read from it since is not the file's. Call after reading.
    public func requireIntact() throws { try file.requireIntact() }

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw TensorFileError(path: path, "truncated: \(bytes.count) bytes, too short for the 8-byte header length")
        }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw TensorFileError(path: path, "header of \(headerLength) bytes is larger than the \(Self.maxHeaderBytes)-byte limit")
        }
        guard Int(headerLength) <= bytes.count - 8 else {
            throw TensorFileError(path: path, "truncated: header says \(headerLength) bytes but only \(bytes.count - 8) follow")
        }
        dataStart = 8 + Int(headerLength)
        // Read with a forward-only scanner: a header of hundreds of thousands of entries costs
        // about its own size in memory, not a tree of Foundation objects many times larger.
        var metadata: [String: String] = [:]
        var entries: [TensorEntry] = []
        var seen = Set<String>()
        let dataBytes = bytes.count - dataStart
        let header = UnsafeBufferPointer(start: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + 8, count: Int(headerLength))
        var scanner = JSONScanner(header, file: path)
        guard scanner.peek() == UInt8(ascii: "{") else {
            throw TensorFileError(path: path, scanner.peek() == nil ? "header is not valid JSON (empty)" : "header is not a JSON object")
        }
        do {
            try scanner.readObject { scanner, key in
                let name = String(decoding: key, as: UTF8.self)
                guard seen.insert(name).inserted else { throw TensorFileError(path: path, "tensor '\(name)' appears twice in the header") }
                if name == "__metadata__" {
                    guard scanner.peek() == UInt8(ascii: "{") else { throw TensorFileError(path: path, "__metadata__ is not an object of strings") }
                    try scanner.readObject { scanner, key in
                        guard scanner.peek() == UInt8(ascii: "\"") else {
                            throw TensorFileError(path: path, "__metadata__ key '\(String(decoding: key, as: UTF8.self))' is not a string")
                        }
                        metadata[String(decoding: key, as: UTF8.self)] = String(decoding: try scanner.readString(), as: UTF8.self)
                    }
                } else {
                    entries.append(try Self.parseEntry(name: name, scanner: &scanner, dataBytes: dataBytes, path: path))
                }
            }
            try scanner.expectEnd()
        } catch let error as TensorFileError where error.message.hasPrefix("line ") {
            throw TensorFileError(path: path, "header is not valid JSON (\(error.message))")
        }
        entries.sort { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        for (previous, next) in zip(entries, entries.dropFirst()) where next.byteRange.lowerBound < previous.byteRange.upperBound {
            throw TensorFileError(path: path, "tensors '\(previous.name)' and '\(next.name)' overlap")
        }
        self.entries = entries
        self.metadata = metadata
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    private static func parseEntry(name: String, scanner: inout JSONScanner, dataBytes: Int, path: String) throws -> TensorEntry {
        guard scanner.peek() == UInt8(ascii: "{") else {
            throw TensorFileError(path: path, "tensor '\(name)': entry is not an object")
        }
        var dtypeName: String?, shape: [Int]?, offsets: [Int]?
        /// A list of integers, or nil when the value is anything else (skipped).
        func integerList(_ scanner: inout JSONScanner) throws -> [Int]? {
            guard scanner.peek() == UInt8(ascii: "[") else {
                try scanner.skipValue()
                return nil
            }
            var values: [Int] = []
            var valid = true
            try scanner.readArray { scanner, _ in
                if valid, let first = scanner.peek(), first == UInt8(ascii: "-") || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")),
                   let value = try? scanner.readInteger() {
                    values.append(value)
                } else {
                    valid = false
                    try scanner.skipValue()
                }
            }
            return valid ? values : nil
        }
        try scanner.readObject { scanner, key in
            switch String(decoding: key, as: UTF8.self) {
            case "dtype": dtypeName = scanner.peek() == UInt8(ascii: "\"") ? String(decoding: try scanner.readString(), as: UTF8.self) : nil
            case "shape": shape = try integerList(&scanner)
            case "data_offsets": offsets = try integerList(&scanner)
            default: try scanner.skipValue()
            }
        }
        guard let dtypeName else {
            throw TensorFileError(path: path, "tensor '\(name)': missing 'dtype'")
        }
        guard let type = ElementType(rawValue: dtypeName) else {
            throw TensorFileError(path: path, "tensor '\(name)': unknown dtype '\(dtypeName)'")
        }
        guard let shape, shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorFileError(path: path, "tensor '\(name)': 'shape' is not a list of non-negative integers")
        }
        guard let offsets, offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
            throw TensorFileError(path: path, "tensor '\(name)': 'data_offsets' is not [begin, end]")
        }
        guard let elements = ShapeText.elementCount(shape), let needed = ShapeText.elementCount([elements, type.byteCount]) else {
            throw TensorFileError(path: path, "tensor '\(name)': shape \(ShapeText.abbreviated(shape)) has more elements than any file can hold")
        }
        guard offsets[1] - offsets[0] == needed else {
            throw TensorFileError(path: path, "tensor '\(name)': \(offsets[1] - offsets[0]) bytes for shape \(ShapeText.abbreviated(shape)) of \(dtypeName) (needs \(needed))")
        }
        guard offsets[1] <= dataBytes else {
            throw TensorFileError(path: path, "truncated: tensor '\(name)' ends at byte \(offsets[1]) of a \(dataBytes)-byte data section")
        }
        return TensorEntry(name: name, type: type, shape: shape, byteRange: offsets[0]..<offsets[1])
    }

    /// The entry for `name`, or an error naming the missing tensor.
    public func entry(_ name: String) throws -> TensorEntry {
        guard let position = index[name] else {
            throw TensorFileError(path: path, "missing tensor '\(name)'")
        }
        return entries[position]
    }

    /// The tensor's elements as Float (F16 and BF16 upcast exactly, F64 rounded, integers by
    /// value). With `shape`, a different stored shape is an error naming both.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        let entry = try checkedEntry(name, expected)
        return ElementDecoding.floats(from: raw(entry), type: entry.type, count: entry.elementCount)
    }

    /// Decodes the tensor straight from the file map into `destination`, which must hold exactly
    /// its elements; with `shape`, a different stored shape is an error naming both. This is how
    /// a checkpoint is loaded without a second copy of the file in memory.
    public func read(_ name: String, shape expected: [Int]? = nil, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let entry = try checkedEntry(name, expected)
        guard entry.type.isFloatingPoint else {
            throw TensorFileError(path: path, "tensor '\(name)' is \(entry.type.rawValue), expected a floating-point dtype")
        }
        guard destination.count == entry.elementCount else {
            throw TensorFileError(path: path, "tensor '\(name)' has \(entry.elementCount) elements, expected \(destination.count)")
        }
        ElementDecoding.decode(from: raw(entry), type: entry.type, into: destination)
    }

    /// The tensor's elements as Int; integer and bool dtypes only.
    public func integers(_ name: String, shape expected: [Int]? = nil) throws -> [Int] {
        let entry = try checkedEntry(name, expected)
        guard !entry.type.isFloatingPoint else {
            throw TensorFileError(path: path, "tensor '\(name)' is \(entry.type.rawValue), expected an integer dtype")
        }
        return ElementDecoding.integers(from: raw(entry), type: entry.type, count: entry.elementCount)
    }

    private func checkedEntry(_ name: String, _ expected: [Int]?) throws -> TensorEntry {
        let entry = try entry(name)
        if let expected, expected != entry.shape {
            throw TensorFileError(path: path, "tensor '\(name)' has shape \(ShapeText.abbreviated(entry.shape)), expected \(ShapeText.abbreviated(expected))")
        }
        return entry
    }

    private func raw(_ entry: TensorEntry) -> UnsafeRawPointer {
        // An empty tensor may sit at the very end of the map; never dereferenced when count is 0.
        file.bytes.baseAddress.map { $0 + dataStart + entry.byteRange.lowerBound } ?? UnsafeRawPointer(bitPattern: 1)!
    }
}
