import Foundation

/// Writes a one-dimensional int32 NPY file whose length is not known in advance: values are
/// appended to a temporary file behind a fixed-size header, which is rewritten with the final
/// length by ``finish()`` before the file is renamed into place. ``cancel()`` (or dropping the
/// writer unfinished) removes the temporary file, so no partial output ever appears.
public final class NPYStreamWriter {
    public let path: String
    private let file: TemporaryFile
    private(set) public var count = 0
    private var finished = false
    /// Header bytes reserved: room for any int64 length, a multiple of 64.
    static let headerBytes = 128

    public init(int32At path: String) throws {
        self.path = path
        file = try TemporaryFile(replacing: path)
        do { try file.handle.write(contentsOf: Self.header(count: 0)) } catch {
            file.discard()
            throw TensorFileError(path: path, "write failed: \(SystemErrorText.describe(error))")
        }
    }

    private static func header(count: Int) -> Data {
        var dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (\(count),), }"
        dict += String(repeating: " ", count: headerBytes - 10 - dict.utf8.count - 1) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8((headerBytes - 10) & 0xFF), UInt8((headerBytes - 10) >> 8)])
        data.append(contentsOf: Array(dict.utf8))
        return data
    }

    public func append(_ values: [Int32]) throws {
        guard !values.isEmpty else { return }
        do {
            try values.withUnsafeBytes { try file.handle.write(contentsOf: Data($0)) }
        } catch {
            throw TensorFileError(path: path, "write failed: \(SystemErrorText.describe(error))")
        }
        count += values.count
    }

    /// Writes the final header and renames the file into place.
    public func finish() throws {
        do {
            try file.handle.seek(toOffset: 0)
            try file.handle.write(contentsOf: Self.header(count: count))
        } catch {
            cancel()
            throw TensorFileError(path: path, "write failed: \(SystemErrorText.describe(error))")
        }
        finished = true
        try file.commit()
    }

    /// Abandons the output: the temporary file is removed.
    public func cancel() {
        file.discard()
        finished = true
    }

    deinit { if !finished { cancel() } }
}
