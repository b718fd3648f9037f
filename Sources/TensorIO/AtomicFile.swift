import Foundation

/// Writes a file all at once or not at all, through a ``TemporaryFile`` beside the target: a
/// failure or an interruption never leaves a half-written output, and a written one survives a
/// crash (it is flushed to the disk before the rename).
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(contentsOf: data) }
    }

    /// Streams the file through `body`, which writes to the handle of the temporary file; on any
    /// error the temporary file is removed and the target is untouched.
    public static func write(to path: String, _ body: (FileHandle) throws -> Void) throws {
        let file = try TemporaryFile(replacing: path)
        do {
            try body(file.handle)
        } catch let error as TensorFileError {
            file.discard()
            throw error
        } catch {
            file.discard()
            throw TensorFileError(path: path, "cannot write: \(SystemErrorText.describe(error))")
        }
        try file.commit()
    }
}
