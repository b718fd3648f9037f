import Foundation

/// A one-line progress display on stderr, shown only when stderr is a terminal and not silenced
/// with `--quiet`; redrawn at most ten times a second.
final class ProgressLine {
    private let enabled: Bool
    private var lastDraw: UInt64 = 0
    private var drawn = false
    private let lock = NSLock()

    init(quiet: Bool) {
        enabled = !quiet && isatty(STDERR_FILENO) != 0
    }

    func update(_ text: @autoclosure () -> String, force: Bool = false) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = DispatchTime.now().uptimeNanoseconds
        guard force || now - lastDraw > 100_000_000 else { return }
        lastDraw = now
        drawn = true
        FileHandle.standardError.write("\r\u{1B}[2K\(text())".data(using: .utf8)!)
    }

    /// Clears the line so later output starts clean.
    func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write("\r\u{1B}[2K".data(using: .utf8)!)
    }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
}

/// Prints to stderr (reports that are not the command's output).
func printError(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}
