import Foundation

/// The temporary files being written right now (``TemporaryFile``s), so that a process stopped by
/// a signal removes them instead of leaving hidden `.name.tmp-PID-N` files of tens of megabytes
/// behind.
///
/// A signal handler may only call async-signal-safe functions and touch memory that already
/// exists: ``prepare()`` creates everything the handler reads, and every installer calls it
/// before installing a handler.
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

    /// The signals that stop a command: Ctrl-C, `kill`, a closed terminal.
    public static let stoppingSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Creates the registry (Swift initialises globals lazily, which allocates and may lock:
    /// never inside a handler). Idempotent.
    public static func prepare() {
        _ = slots
        _ = lock
    }

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

    /// SIGINT, SIGTERM and SIGHUP remove the registered files, then end the process with
    /// 128 + the signal's number (130, 143, 129), as the signal itself would.
    public static func installSignalHandlers() {
        prepare()
        install { number in
            TemporaryFiles.removeRegistered()
            _exit(128 + number)
        }
    }

    /// Installs `handler` for ``stoppingSignals`` with `sigaction` (no `SA_RESETHAND`: a later
    /// signal reaches the handler again). The handler must be async-signal-safe and touch only
    /// state created before this call.
    public static func install(_ handler: @convention(c) (Int32) -> Void) {
        for number in stoppingSignals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = handler
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
    }
}
