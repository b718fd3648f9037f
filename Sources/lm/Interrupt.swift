import Foundation
import Synchronization
import TensorIO

/// A graceful stop for long commands (training): the first SIGINT, SIGTERM or SIGHUP asks the
/// loop to stop after the step it is in, so that it can write a checkpoint, and the command then
/// exits with 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP). A
/// second signal ends the process at once: the files being written are removed, and the last
/// complete checkpoint stays as it was.
enum Interrupt {
    /// The first signal's number, 0 while none came. The handler only touches this and the
    /// temporary-file registry, both created by ``install()`` before the handler exists.
    private static let received = Atomic<Int32>(0)

    static var isRequested: Bool { received.load(ordering: .relaxed) != 0 }

    /// 128 + the signal that asked for the stop, or nil when none did.
    static var exitStatus: Int32? {
        let number = received.load(ordering: .relaxed)
        return number == 0 ? nil : 128 + number
    }

    /// Installs the handlers (async-signal-safe: an atomic exchange, `unlink`s, `_exit`).
    static func install() {
        _ = received.load(ordering: .relaxed)  // create the atomic now, not inside the handler
        TemporaryFiles.prepare()
        TemporaryFiles.install { number in
            let (exchanged, _) = Interrupt.received.compareExchange(expected: 0, desired: number, ordering: .relaxed)
            if !exchanged {
                TemporaryFiles.removeRegistered()
                _exit(128 + number)
            }
        }
    }

    /// Ends the process with ``exitStatus`` when a signal stopped the command early.
    static func exitIfInterrupted() {
        if let status = exitStatus { exit(status) }
    }
}
