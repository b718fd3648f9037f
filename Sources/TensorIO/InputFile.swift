import Foundation

/// Reading a file named on the command line or in a configuration, with the reason it cannot
/// be read in words: "no such file", "is a directory", "Permission denied".
public enum InputFile {
    /// Why `path` cannot be read as a regular file, or nil when it can be opened.
    public static func problem(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "no such file" }
        if isDirectory.boolValue { return "is a directory" }
        guard FileManager.default.isReadableFile(atPath: path) else { return "permission denied" }
        return nil
    }

    /// The file's bytes (memory-mapped when `mapped`); the error is "path: reason".
    public static func read(_ path: String, mapped: Bool = false) throws -> Data {
        if let problem = problem(path) { throw TensorFileError(path: path, problem) }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: mapped ? .alwaysMapped : [])
        } catch {
            throw TensorFileError(path: path, "cannot read: \(SystemErrorText.describe(error))")
        }
    }
}
