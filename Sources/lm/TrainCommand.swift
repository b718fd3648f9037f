import ArgumentParser
import Foundation
import Kernels
import Model
import TensorIO
import Tokenizer

struct TrainCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on token ids, writing checkpoints, metrics.jsonl and loss.svg to a run directory.",
        discussion: """
        Start from --config (random initialisation) or --model (fine-tuning), or continue a run with \
        --resume RUN_DIR. The data are token ids from `lm tokenizer encode`, or conversations \
        (.jsonl: {"messages": [...]} or {"prompt", "completion"} per line) rendered with the \
        model's chat template, the loss on the assistant's tokens only (unless --train-on-prompt); \
        without --validation, the last --validation-fraction of --train is held out.

        With --lora-rank, the model stays frozen and only LoRA adapters train; a GGUF model keeps \
        its quantized blocks (QLoRA). The run directory then holds a PEFT adapter \
        (adapter_config.json, adapter_model.safetensors) for --adapter, lm merge and PEFT. Ctrl-C (or SIGTERM, SIGHUP) finishes \
        the current step, writes a checkpoint and exits with 130 (143, 129); a second one stops at \
        once and leaves the last complete checkpoint. --resume then continues exactly where it stopped.

        Data-parallel over several processes or machines: build with the MPI trait and start it \
        with `mpirun -np N lm train …` (see the README). Each rank takes --batch-size / N of every \
        batch; the gradients are averaged over the ranks; rank 0 writes the run directory.
        """)

    @Option(help: "A config.json for a new, randomly initialised model.") var config: String?
    @Option(help: "A model to fine-tune: a model directory, a llama.cpp .gguf file or a Hugging Face directory.") var model: String?
    @Option(help: "A run directory to continue (its settings and data are reused).") var resume: String?
    @Option(help: "Training data: token ids (.npy: int32, int64, uint16 or int16), or conversations (.jsonl).") var train: String?
    @Option(help: "Validation data (.npy or .jsonl, as --train).") var validation: String?
    @Flag(help: "With conversations: learn every token, the prompts too (default: the assistant's answers only).") var trainOnPrompt = false
    @Option(help: "Fraction of --train held out for validation when --validation is not given.") var validationFraction = 0.05
    @Option(help: "Tokenizer directory to store in the run (default: the --model directory's); enables bits per byte.") var tokenizer: String?
    @Option(help: "The run directory to write.") var output: String?

    @OptionGroup var training: TrainingOptionGroup
    @OptionGroup var lora: LoRAOptions
    @Flag(help: "Under mpirun: each rank keeps the AdamW moments of its own share of the parameters only (ZeRO stage 1).")
    var shardOptimizer = false
    @Flag(help: "Write the run into --output even though it holds a model (its model.safetensors and config.json are then replaced by the run's).")
    var force = false
    @Flag(help: "With --resume: continue even when the checkpoint's weights or configuration are not the ones its training state recorded.")
    var acceptChangedCheckpoint = false
    @OptionGroup var running: ModelRunOptions
    @Flag(help: "No progress display.") var quiet = false

    func validate() throws {
        let starts = [config, model, resume].compactMap { $0 }.count
        guard starts == 1 else { throw ValidationError("give exactly one of --config, --model and --resume") }
        if resume == nil {
            guard train != nil else { throw ValidationError("--train is required (token ids from lm tokenizer encode)") }
            guard output != nil else { throw ValidationError("--output is required: the run directory to write") }
        }
        if lora.loraRank != nil, model == nil {
            throw ValidationError(resume == nil ? "--lora-rank needs --model: the model whose adapters to train" : "--lora-rank with --resume: the run keeps the settings it started with")
        }
    }

    func run() throws {
        running.apply()
        let launch = try DataParallelLaunch(shardOptimizerState: shardOptimizer, threadsGiven: running.threading.threads != nil)
        try launch.run {
            let quiet = self.quiet || launch.rank != 0
            let trainer: Trainer
            if let resume {
                trainer = try Trainer.resume(runDirectory: resume, steps: training.steps, parallelism: launch.parallelism,
                                             acceptChangedCheckpoint: acceptChangedCheckpoint)
                if !quiet { printError("resuming \(resume) at step \(trainer.step) of \(trainer.options.steps)") }
            } else {
                trainer = try start(parallelism: launch.parallelism)
            }
            if launch.ranks > 1, !quiet { printError(Self.describe(trainer)) }
            Interrupt.install()
            let fault = try FaultInjection.fromEnvironment()
            let (finished, totals) = try Self.train(trainer, quiet: quiet, lineByLine: launch.ranks > 1) { progress in
                try fault?.apply(after: progress.step, trainer: trainer)
            }
            if launch.ranks > 1 {
                let peaks = launch.peakResidentBytesPerRank()  // collective: every rank takes part
                if !quiet {
                    printError("between ranks, per step: \(totals.summary); peak memory per rank: "
                               + peaks.map { String(format: "%.0f MiB", Double($0) / 1_048_576) }.joined(separator: ", "))
                }
            }
            if !quiet { report(trainer, finished: finished, totals: totals) }
        }
        Interrupt.exitIfInterrupted()
    }

    /// The data-parallel layout and what each rank keeps, printed by rank 0 at the start.
    static func describe(_ trainer: Trainer) -> String {
        let ranks = trainer.parallelism.group.size, options = trainer.options
        let bytes = trainer.stateBytesPerRank
        func mib(_ value: Int) -> String { String(format: "%.1f MiB", Double(value) / 1_048_576) }
        let optimizer = trainer.parallelism.shardsOptimizerState
            ? "AdamW moments \(mib(bytes.optimizer)) (sharded, ZeRO-1; \(mib(bytes.parameters * 2)) unsharded)"
            : "AdamW moments \(mib(bytes.optimizer)) (unsharded; --shard-optimizer keeps ~1/\(ranks))"
        return "data-parallel: \(ranks) ranks × \(options.batchSize / ranks) sequences (batch \(options.batchSize)), \(Threading.count) thread\(Threading.count == 1 ? "" : "s") each; per rank: parameters \(mib(bytes.parameters)), gradients \(mib(bytes.gradients)), \(optimizer)"
    }

    /// A new run from --config or --model.
    private func start(parallelism: DataParallelism) throws -> Trainer {
        guard let train, let output else { throw ValidationError("--train and --output are required") }
        try OutputOverInput.refuse(directories: [NamedPath("--output", output)],
                                   inputs: [NamedPath("--train", train), NamedPath("--validation", validation), NamedPath("--model", model),
                                            NamedPath("--config", config), NamedPath("--tokenizer", tokenizer)])
        if Trainer.hasRun(in: output) {
            throw ModelError("\(output) already holds a run: continue it with --resume \(output), or choose another --output")
        }
        let existingModel = (output as NSString).appendingPathComponent(Checkpoint.weightsFile)
        if FileManager.default.fileExists(atPath: existingModel), !force {
            throw ModelError("\(output) holds a model (\(Checkpoint.weightsFile)): the run would replace it; choose another --output, or pass --force")
        }
        let loraSettings = try lora.settings()
        let conversations = [train, validation].contains { $0?.hasSuffix(".jsonl") == true }
        let lm: TransformerLM
        var pretrained: PretrainedModel?
        if let config {
            guard !conversations else { throw ValidationError("conversations (.jsonl) need --model: its tokenizer and chat template render them") }
            lm = try TransformerLM(config: try ModelConfig.load(path: config), seed: training.seed)
        } else if loraSettings != nil || conversations {
            // QLoRA: a GGUF model's blocks stay as they are; the adapters train over them.
            pretrained = try PretrainedModel.load(model!, keepQuantized: loraSettings != nil && !lora.dequantizeBase)
            lm = pretrained!.model
        } else {
            lm = try Checkpoint.load(modelAt: model!)
        }
        let loadedTokenizer = try tokenizer.map { try TokenizerDirectory.load($0) } ?? (try model.flatMap { try Checkpoint.loadTokenizer(directory: $0) })
        let options = try training.trainingOptions(modelContext: lm.config.contextLength)
        let adapter = try loraSettings.map { try LoRAAdapter(settings: $0, config: lm.config, seed: training.seed) }
        let vocab = lm.config.vocabSize
        let createdOutput = !FileManager.default.fileExists(atPath: output)
        do {
            // Conversations are rendered once, into ids and a loss mask inside the run directory.
            let rendered = try pretrained.map { try RenderedConversations(pretrained: $0, trainOnPrompt: trainOnPrompt, output: output) }
            let trainingData = try TokenDataset(path: try rendered?.ids(of: train, name: "train") ?? train, vocabSize: vocab)
            let validationData = try validation.map { try TokenDataset(path: try rendered?.ids(of: $0, name: "validation") ?? $0, vocabSize: vocab) }
            let trainer = try Trainer(model: lm, options: options, training: trainingData, validation: validationData,
                                      validationFraction: validationFraction, tokenizer: loadedTokenizer, runDirectory: output,
                                      parallelism: parallelism, adapter: adapter, baseModel: model)
            if adapter != nil { return trainer }
            return try copySideFiles(trainer, model: model, tokenizer: loadedTokenizer, output: output, parallelism: parallelism)
        } catch {
            // Nothing is left of a run that did not start.
            try? FileManager.default.removeItem(atPath: createdOutput ? output : (output as NSString).appendingPathComponent(RenderedConversations.folder))
            throw error
        }
    }

    /// A fine-tuned model's run gets the model's side files.
    private func copySideFiles(_ trainer: Trainer, model: String?, tokenizer loadedTokenizer: Tokenizer?, output: String,
                               parallelism: DataParallelism) throws -> Trainer {
        // A SentencePiece model's tokenizer.bin (llama2.c) or tokenizer.gguf (Gemma's scored
        // pieces) goes with it into the run, so that the run generates text; an imported model's
        // stop tokens, BOS/EOS texts and chat template too, so that lm chat talks with the
        // fine-tuned run.
        if parallelism.group.rank == 0, let model {
            let sideFiles = ["generation_config.json", "tokenizer_config.json", "chat_template.jinja"]
                + (loadedTokenizer == nil ? [TokenizerDirectory.sentencePieceFile, TokenizerDirectory.scoredPiecesFile] : [])
            for name in sideFiles {
                if let data = FileManager.default.contents(atPath: (model as NSString).appendingPathComponent(name)) {
                    try AtomicFile.write(data, to: (output as NSString).appendingPathComponent(name))
                }
            }
        }
        return trainer
    }

    /// Runs `trainer` with a progress line on stderr (when it is a terminal; `lineByLine`, as
    /// under mpirun, whose ranks write to pipes: a plain line every tenth of the steps) and a line
    /// per evaluation; returns whether every step was done (false after an interrupt) and the
    /// run's totals (steps, tokens, time, time with the other ranks).
    @discardableResult
    static func train(_ trainer: Trainer, quiet: Bool, timeLimit: TimeInterval? = nil, lineByLine: Bool = false,
                      afterStep: (TrainingProgress) throws -> Void = { _ in }) throws -> (finished: Bool, totals: RunTotals) {
        let progressLine = ProgressLine(quiet: quiet)
        let started = Date()
        var totals = RunTotals()
        let finished = try trainer.run(shouldStop: {
            Interrupt.isRequested || timeLimit.map { Date().timeIntervalSince(started) >= $0 } == true
        }, progress: { progress in
            totals.add(progress, tokensPerStep: trainer.options.batchSize * trainer.options.contextLength, since: started)
            try afterStep(progress)
            if lineByLine, !quiet, progress.step % max(1, progress.steps / 10) == 0 || progress.step == progress.steps {
                printError(String(format: "step %d/%d  loss %.4f  lr %.2e  %.0f tok/s  %@", progress.step, progress.steps,
                                  progress.loss, progress.learningRate, progress.tokensPerSecond, totals.summary))
            }
            let remaining = Double(progress.steps - progress.step) * Double(trainer.options.batchSize * trainer.options.contextLength)
                / max(progress.tokensPerSecond, 1)
            progressLine.update(String(format: "step %d/%d  loss %.4f  lr %.2e  %.0f tok/s  %@ elapsed  ETA %@",
                                       progress.step, progress.steps, progress.loss, progress.learningRate, progress.tokensPerSecond,
                                       duration(progress.elapsedSeconds), duration(remaining)), force: progress.step == progress.steps)
            if let evaluation = progress.evaluation, !quiet {
                progressLine.finish()
                printError(String(format: "step %d: train loss %.4f, validation loss %.4f%@ (%@)", evaluation.step, evaluation.trainLoss,
                                  evaluation.valLoss ?? .nan, evaluation.valBitsPerByte.map { String(format: ", %.3f bits/byte", $0) } ?? "",
                                  duration(evaluation.elapsedSeconds)))
            }
        })
        progressLine.finish()
        return (finished, totals)
    }

    private func report(_ trainer: Trainer, finished: Bool, totals: RunTotals) {
        guard !quiet else { return }
        if totals.steps > 0 {
            printError(String(format: "%d steps, %d tokens in %@: %.0f tokens/s (evaluations included)", totals.steps, totals.tokens,
                              Self.duration(totals.seconds), Double(totals.tokens) / max(totals.seconds, 1e-9)))
        }
        if !finished {
            printError("stopped at step \(trainer.step); checkpoint written. Continue with: lm train --resume \(trainer.runDirectory)")
        }
        printError("run directory: \(trainer.runDirectory) (loss plot: \(trainer.plotPath))")
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%dh%02dm", total / 3600, total % 3600 / 60) : String(format: "%dm%02ds", total / 60, total % 60)
    }
}

/// Steps, tokens and time over a run (this invocation's part of it), and the time spent with
/// the other ranks.
struct RunTotals {
    var steps = 0
    var tokens = 0
    var seconds = 0.0
    var synchronizationSeconds = 0.0
    var exchangeSeconds = 0.0

    mutating func add(_ progress: TrainingProgress, tokensPerStep: Int, since start: Date) {
        steps += 1
        tokens += tokensPerStep
        seconds = Date().timeIntervalSince(start)
        synchronizationSeconds += progress.synchronizationSeconds
        exchangeSeconds += progress.exchangeSeconds
    }

    /// Mean milliseconds per step: the gradient (and parameter) exchange, and the wait for the
    /// slowest rank.
    var summary: String {
        let count = Double(max(1, steps))
        return String(format: "exchange %.1f ms, waiting %.1f ms", exchangeSeconds * 1000 / count, synchronizationSeconds * 1000 / count)
    }
}
