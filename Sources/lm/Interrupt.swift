import Foundation
import Synchronization
import TensorIO

/// Ctrl-C during training: the first SIGINT (or SIGTERM) asks the loop to stop after the step
/// it is in, so that it can write a checkpoint; a second one ends the process at once.
enum Interrupt {
    private static let requested = Atomic<Bool>(false)

    static var isRequested: Bool { requested.load(ordering: .relaxed) }

    /// Installs the handlers (the handler only stores to an atomic: async-signal-safe).
    static func install() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { number in
                if Interrupt.requested.exchange(true, ordering: .relaxed) {
                    TemporaryFiles.removeRegistered()
                    _exit(128 + number)
                }
            }
        }
    }
}
