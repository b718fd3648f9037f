import Foundation

/// The one writer of a run directory: an exclusive `flock` on `RUN/.lock`, held for as long as
/// this value lives (the kernel drops it when the process ends, however it ends). The holder's
/// pid is written into the file, so a second writer is refused with it.
final class RunLock {
    static let file = ".lock"
    private let descriptor: Int32

    /// Takes the lock of `directory` (which must exist), or throws naming the process that holds it.
    init(directory: String) throws {
        let path = (directory as NSString).appendingPathComponent(Self.file)
        let descriptor = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ModelError("\(path): cannot open the run's lock file: \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw ModelError("\(directory): another process is writing this run (pid \(holder.isEmpty ? "unknown" : holder)); wait for it to finish or stop it first")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }  // closing the descriptor releases the lock
}
