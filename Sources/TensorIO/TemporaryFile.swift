import Foundation
import Synchronization

/// A new file being written beside the file it will become, published by ``commit()`` or
/// removed by ``discard()`` (or when dropped uncommitted).
///
/// - Opened once, with `O_CREAT | O_EXCL | O_NOFOLLOW`, and written only through that
///   descriptor: a name planted in advance (a link to elsewhere, a stale file) is never followed
///   or reused.
/// - Given the permissions of the file it replaces (a 0600 file stays 0600), else the
///   process's default for new files.
/// - Registered with ``TemporaryFiles`` while it exists, so SIGINT, SIGTERM or SIGHUP remove it.
/// - ``commit()`` flushes it to the disk (`fsync`), renames it over the target and flushes the
///   directory, so after it returns the new contents survive a crash or power loss.
public final class TemporaryFile {
    /// The file this one becomes.
    public let target: String
    /// Where it is written meanwhile: `.NAME.tmp-PID-N` in the target's directory.
    public let path: String
    /// Writes go here.
    public let handle: FileHandle
    private let descriptor: Int32
    private let registration: Int?
    private var done = false

    private static let counter = Atomic<Int>(0)

    public init(replacing target: String) throws {
        self.target = target
        let url = URL(fileURLWithPath: target)
        let directory = url.deletingLastPathComponent().path
        let existingMode: mode_t? = {
            var status = stat()
            return stat(target, &status) == 0 ? status.st_mode & 0o7777 : nil
        }()
        // A fresh name per attempt: a stale file of an earlier process with the same pid is skipped.
        // Each name is registered before it is created: a signal between the two then unlinks a
        // name not yet created (nothing), where one between creating and registering left the
        // file behind (a Ctrl-C at the wrong moment, found by CrashSafetyTests).
        var candidate = "", descriptor: Int32 = -1, registration: Int? = nil
        for _ in 0..<100 {
            let number = Self.counter.add(1, ordering: .relaxed).newValue
            candidate = (directory as NSString).appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(number)")
            registration = TemporaryFiles.register(candidate)
            descriptor = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
            if descriptor >= 0 { break }
            let reason = errno
            TemporaryFiles.unregister(registration)
            errno = reason
            if reason != EEXIST { break }
        }
        guard descriptor >= 0 else {
            throw TensorFileError(path: target, "cannot create a temporary file beside it: \(String(cString: strerror(errno)))")
        }
        if let existingMode { _ = fchmod(descriptor, existingMode) }
        self.path = candidate
        self.descriptor = descriptor
        self.registration = registration
        handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
    }

    /// Flushes, renames over the target, flushes the directory. On failure the temporary file
    /// is removed and the target is as it was.
    public func commit() throws {
        precondition(!done, "TemporaryFile: \(target) was already committed or discarded")
        guard fsync(descriptor) == 0 else { return try fail("cannot write") }
        close(descriptor)
        guard rename(path, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            finish()
            throw TensorFileError(path: target, "cannot write: \(reason)")
        }
        finish()
        Self.syncDirectory(of: target)
    }

    /// Removes the temporary file; the target is untouched.
    public func discard() {
        guard !done else { return }
        close(descriptor)
        unlink(path)
        finish()
    }

    deinit { discard() }

    private func fail(_ what: String) throws {
        let reason = String(cString: strerror(errno))
        discard()
        throw TensorFileError(path: target, "\(what): \(reason)")
    }

    private func finish() {
        TemporaryFiles.unregister(registration)
        done = true
    }

    /// Flushes the directory holding `path` (its entries: a rename, a new file), best effort.
    public static func syncDirectory(of path: String) {
        syncDirectory(URL(fileURLWithPath: path).deletingLastPathComponent().path)
    }

    /// Flushes `directory`'s entries, best effort (some file systems refuse to sync a directory).
    public static func syncDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }
}
