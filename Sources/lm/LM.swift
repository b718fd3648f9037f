import ArgumentParser
import Foundation
import Kernels
import Model
import TensorIO

@main
struct LM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Build, run and inspect Transformer language models on the CPU.",
        subcommands: [DemoCommand.self, TrainCommand.self, InitCommand.self, LogitsCommand.self, LossCommand.self, GenerateCommand.self, ChatCommand.self, TokenizerCommand.self, JSONCheckCommand.self, ImportCommand.self, QuantizeCommand.self, ExportCommand.self, MergeCommand.self, TraceCommand.self, AttentionCommand.self, LensCommand.self, AttributeCommand.self, PatchCommand.self, ServeCommand.self])

    static func main() {
        do {
            var command = try parseAsRoot()
            // Only commands that compute with OpenBLAS restart with its recommended settings;
            // the others (the tokenizer's) keep their start-up short.
            if command is ComputesWithBLAS { BLASCore.restartWithRecommendedSettingsIfNeeded() }
            // Ctrl-C or a kill removes any half-written output (training replaces this with a
            // graceful stop that checkpoints first).
            TemporaryFiles.installSignalHandlers()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

/// A command whose work runs on OpenBLAS: `lm` restarts once with ``BLASCore``'s settings first.
protocol ComputesWithBLAS {}

/// `--threads`, shared by the commands that compute.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and our loops (default: LM_THREADS or every core).")
    var threads: Int?

    func validate() throws {
        let limit = Threading.maximumCount
        if let threads, threads < 1 || threads > limit { throw ValidationError("--threads must be in 1...\(limit), got \(threads)") }
        if threads == nil, let text = ProcessInfo.processInfo.environment["LM_THREADS"], Threading.environmentThreadCount() == nil {
            throw ValidationError("LM_THREADS must be an integer in 1...\(limit), got '\(text)'")
        }
    }

    func apply() {
        if let threads { Threading.count = threads }
    }
}

/// `--threads` and `--attention`: the settings of every command that runs a model, applied at once.
struct ModelRunOptions: ParsableArguments {
    @OptionGroup var threading: ThreadOptions
    @OptionGroup var attention: AttentionOptions

    func apply() {
        threading.apply()
        attention.apply()
    }
}

/// `--attention`, part of ``ModelRunOptions``.
struct AttentionOptions: ParsableArguments {
    @Option(help: "Attention kernel: standard (keeps [B, H, T, T] probabilities), memory-efficient (tiled, keeps [B, H, T]) or automatic (memory-efficient from 2,048 tokens or when the standard one would not fit). Default: LM_ATTENTION, else automatic.")
    var attention: String?

    func validate() throws {
        if let attention, AttentionChoice(attention) == nil {
            throw ValidationError("--attention must be standard, memory-efficient or automatic, got '\(attention)'")
        }
        if attention == nil {
            do { _ = try AttentionChoice.fromEnvironment() } catch let error as ModelError { throw ValidationError(error.message) }
        }
    }

    func apply() {
        if let attention, let choice = AttentionChoice(attention) { AttentionChoice.default = choice }
    }
}
