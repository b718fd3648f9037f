import Foundation

/// Writes a file all at once or not at all: the bytes go to a temporary file beside the target,
/// which is then renamed over it, so a failure never leaves a half-written output.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(contentsOf: data) }
    }

    /// Streams the file through `body`, which writes to the handle of the temporary file; on any
    /// error the temporary file is removed and the target is untouched.
    public static func write(to path: String, _ body: (FileHandle) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        let registration = TemporaryFiles.register(temporary.path)
        defer { TemporaryFiles.unregister(registration) }
        do {
            guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: temporary.path) else {
                throw TensorFileError(path: path, "cannot create \(temporary.path)")
            }
            do {
                try body(handle)
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            if rename(temporary.path, url.path) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: temporary)
                throw TensorFileError(path: path, "cannot write: \(reason)")
            }
        } catch let error as TensorFileError {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw TensorFileError(path: path, "cannot write: \(SystemErrorText.describe(error))")
        }
    }
}
