import Foundation

/// The temporary files being written right now (atomic writes, streamed NPY outputs), so that a
/// process stopped by SIGINT or SIGTERM removes them instead of leaving hidden `.name.tmp-PID`
/// files of tens of megabytes behind.
public enum TemporaryFiles {
    private static let capacity = 64
    // The signal handler reads these slots without a lock (it may not take one); it is safe
    // because a slot holds either nil or a C string that stays allocated until after the slot
    // is cleared, and pointer-sized stores are atomic on the platforms Swift runs on. Writers
    // serialise among themselves with `lock`.
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let slots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        slots.initialize(repeating: nil, count: capacity)
        return slots
    }()
    private static let lock = NSLock()

    /// Remembers `path` until ``unregister(_:)``; returns its slot (nil when all are taken, in
    /// which case the file is simply not cleaned up on a signal).
    public static func register(_ path: String) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard let slot = (0..<capacity).first(where: { slots[$0] == nil }) else { return nil }
        slots[slot] = strdup(path)
        return slot
    }

    public static func unregister(_ slot: Int?) {
        guard let slot else { return }
        lock.lock()
        defer { lock.unlock() }
        let text = slots[slot]
        slots[slot] = nil
        free(text)
    }

    /// Unlinks every registered file. Async-signal-safe: only `unlink` on prepared C strings.
    public static func removeRegistered() {
        for slot in 0..<capacity {
            if let path = slots[slot] { unlink(path) }
        }
    }

    /// SIGINT and SIGTERM remove the registered files, then end the process as the signal would.
    public static func installSignalHandlers() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { number in
                TemporaryFiles.removeRegistered()
                _exit(128 + number)
            }
        }
    }
}
