import Foundation

/// Writes a file all at once or not at all: the bytes go to a temporary file beside the target,
/// which is then renamed over it, so a failure never leaves a half-written output.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try data.write(to: temporary)
            if rename(temporary.path, url.path) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: temporary)
                throw TensorFileError(path: path, "cannot write: \(reason)")
            }
        } catch let error as TensorFileError {
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw TensorFileError(path: path, "cannot write: \(error.localizedDescription)")
        }
    }
}
