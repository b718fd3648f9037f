import Foundation
import Model

/// Faults injected into one rank of a data-parallel run, for testing that every rank stops and
/// the last checkpoint survives: `LM_FAULT_INJECTION=KIND@RANK:STEP`, applied on rank RANK right
/// after step STEP. Kinds: `nan` (a norm gain becomes NaN, so the next loss is NaN), `drift` (one
/// weight moves by 1e-3, so the ranks' weights differ), `kill` (the process dies by SIGKILL),
/// `error` (this rank alone throws, as a failed write would).
///
/// Only in debug builds (the ones `swift test` runs): a release `lm` ignores the variable, so
/// that no environment setting can corrupt a real run.
struct FaultInjection {
    enum Kind: String { case nan, drift, kill, error }
    let kind: Kind
    let rank: Int
    let step: Int

    static func fromEnvironment() throws -> FaultInjection? {
        #if DEBUG
        guard let text = ProcessInfo.processInfo.environment["LM_FAULT_INJECTION"] else { return nil }
        let parts = text.split(whereSeparator: { $0 == "@" || $0 == ":" }).map(String.init)
        guard parts.count == 3, let kind = Kind(rawValue: parts[0]), let rank = Int(parts[1]), let step = Int(parts[2]) else {
            throw ModelError("LM_FAULT_INJECTION must be KIND@RANK:STEP with KIND nan, drift, kill or error, got '\(text)'")
        }
        return FaultInjection(kind: kind, rank: rank, step: step)
        #else
        return nil
        #endif
    }

    func apply(after step: Int, trainer: Trainer) throws {
        guard step == self.step, trainer.parallelism.group.rank == rank else { return }
        let parameters = trainer.model.parameters.pointer
        switch kind {
        case .nan: parameters[trainer.model.layout.entry("ln_final.weight")!.offset] = .nan
        case .drift: parameters[trainer.model.layout.entry("lm_head.weight")!.offset] += 1e-3
        case .kill: kill(getpid(), SIGKILL)
        case .error: throw ModelError("an error injected on rank \(rank) after step \(step) (LM_FAULT_INJECTION)")
        }
    }
}
