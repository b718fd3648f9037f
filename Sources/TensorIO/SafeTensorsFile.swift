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
        let headerData = Data(bytes[8..<dataStart])
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw TensorFileError(path: path, "header is not valid JSON")
        }
        guard let header = json as? [String: Any] else {
            throw TensorFileError(path: path, "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [TensorEntry] = []
        let dataBytes = bytes.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let pairs = value as? [String: Any] else {
                    throw TensorFileError(path: path, "__metadata__ is not an object of strings")
                }
                for (key, item) in pairs {
                    guard let text = item as? String else {
                        throw TensorFileError(path: path, "__metadata__ key '\(key)' is not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try Self.parseEntry(name: name, value: value, dataBytes: dataBytes, path: path))
        }
        entries.sort { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        for (previous, next) in zip(entries, entries.dropFirst()) where next.byteRange.lowerBound < previous.byteRange.upperBound {
            throw TensorFileError(path: path, "tensors '\(previous.name)' and '\(next.name)' overlap")
        }
        self.entries = entries
        self.metadata = metadata
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    private static func parseEntry(name: String, value: Any, dataBytes: Int, path: String) throws -> TensorEntry {
        guard let fields = value as? [String: Any] else {
            throw TensorFileError(path: path, "tensor '\(name)': entry is not an object")
        }
        guard let dtypeName = fields["dtype"] as? String else {
            throw TensorFileError(path: path, "tensor '\(name)': missing 'dtype'")
        }
        guard let type = ElementType(rawValue: dtypeName) else {
            throw TensorFileError(path: path, "tensor '\(name)': unknown dtype '\(dtypeName)'")
        }
        guard let shapeValues = fields["shape"] as? [Any],
              let shape = integerList(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorFileError(path: path, "tensor '\(name)': 'shape' is not a list of non-negative integers")
        }
        guard let offsetValues = fields["data_offsets"] as? [Any], let offsets = integerList(offsetValues),
              offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
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

    private static func integerList(_ values: [Any]) -> [Int]? {
        var result: [Int] = []
        for value in values {
            // Bridging to Int fails for fractional numbers, strings and booleans-as-strings.
            guard let number = value as? Int else { return nil }
            result.append(number)
        }
        return result
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
