import ArgumentParser
import Foundation
import Kernels
import Model
import TensorIO
import Tokenizer

/// The whole pipeline in one command: text → tokenizer → token ids → a trained model → samples.
struct DemoCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "From raw text to a model that writes: train a tokenizer and a small model for a few minutes, then sample.",
        discussion: """
        Without --input the corpus is the King James Bible from Debian's bible-kjv (verse references \
        stripped). Trains a 2,048-token byte-level BPE, encodes the text, holds out the last 5% for \
        validation, trains a 4-layer model (d_model 256, 8 heads, d_ff 688, context 128, batch 16, \
        AdamW on a cosine schedule) for about --minutes, then prints samples. Everything goes into \
        the run directory: corpus, tokenizer, token ids, checkpoint, metrics.jsonl and loss.svg.
        """)

    @Option(help: "UTF-8 text to train on (documents may be separated by <|endoftext|>); default: the King James Bible.") var input: String?
    @Option(help: "The run directory (default: lm-demo under the current directory, or lm-demo-2, … when taken).") var output: String?
    @Option(help: "Minutes of model training (tokenizer training and encoding come on top).") var minutes = 10.0
    @Option(help: "Tokenizer vocabulary size.") var vocabSize = 2048
    @Option(help: "Seed of the tokenizer split, the initialisation and the batches.") var seed: UInt64 = 0
    @OptionGroup var running: ModelRunOptions
    @Flag(help: "No progress display.") var quiet = false

    static let special = "<|endoftext|>"

    func validate() throws {
        guard minutes.isFinite, minutes > 0, minutes <= 10_000 else { throw ValidationError("--minutes must be a positive number of minutes, got \(minutes)") }
        guard vocabSize >= 257, vocabSize <= 1 << 20 else { throw ValidationError("--vocab-size must be in 257...\(1 << 20), got \(vocabSize)") }
    }

    func run() throws {
        running.apply()
        let text = try corpus()  // before anything is written: a bad --input leaves nothing behind
        let directory = try runDirectory()
        try OutputOverInput.refuse(directories: [NamedPath("--output", directory)], inputs: [NamedPath("--input", input)])
        let existed = FileManager.default.fileExists(atPath: directory)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ModelError("\(directory): cannot create the run directory: \(SystemErrorText.describe(error))")
        }
        say("run directory: \(directory)")
        do {
            try runPipeline(text: text, directory: directory)
        } catch {
            // A demo that cannot run leaves nothing behind: the folder it made, with what it wrote.
            if !existed { try? FileManager.default.removeItem(atPath: directory) }
            throw error
        }
    }

    /// Corpus, tokenizer, ids, training and samples, in `directory`.
    private func runPipeline(text: Data, directory: String) throws {

        // 1. The corpus.
        let corpusPath = (directory as NSString).appendingPathComponent("corpus.txt")
        try AtomicFile.write(text, to: corpusPath)

        // 2. The tokenizer.
        let progress = ProgressLine(quiet: quiet)
        var start = Date()
        let tokenizer = try BPETrainer.train(file: corpusPath, options: BPETrainingOptions(vocabSize: vocabSize, specialTokens: [Self.special],
                                                                                          threads: Threading.count)) { step in
            if case .merging(let done, let total) = step { progress.update("tokenizer: merges \(done) / \(total)", force: done == total) }
        }
        progress.finish()
        let tokenizerDirectory = (directory as NSString).appendingPathComponent("tokenizer")
        try TokenizerDirectory.save(tokenizer, to: tokenizerDirectory)
        say(String(format: "tokenizer: %d tokens in %.1f s → %@", tokenizer.vocabularySize, Date().timeIntervalSince(start), tokenizerDirectory))

        // 3. Token ids.
        start = Date()
        let idsPath = (directory as NSString).appendingPathComponent("tokens.npy")
        let writer = try NPYStreamWriter(int32At: idsPath)
        do {
            try StreamingEncoder(tokenizer: tokenizer, threads: Threading.count).encode(file: corpusPath, emit: { try writer.append($0) })
            try writer.finish()
        } catch {
            writer.cancel()
            throw error
        }
        say(String(format: "encoded: %d tokens in %.1f s → %@", writer.count, Date().timeIntervalSince(start), idsPath))

        // 4. The model and the run, sized to the time given.
        let config = ModelConfig(vocabSize: tokenizer.vocabularySize, contextLength: 128, dModel: 256, numLayers: 4, numHeads: 8,
                                 dFF: 688, ropeTheta: 10_000)
        let data = try TokenDataset(path: idsPath, vocabSize: config.vocabSize)
        let (trainingPart, validationPart) = try data.split(validationFraction: 0.05)
        guard trainingPart.windowCount(length: 128) > 0, validationPart.windowCount(length: 128) > 0 else {
            throw ModelError("the corpus is \(writer.count) tokens; the demo needs at least \(Int((129 / 0.05).rounded(.up))) (a context of 128 in the training part and in the 5% held out): give a longer --input")
        }
        var options = TrainingOptions()
        options.batchSize = 16
        options.contextLength = 128
        options.seed = seed
        let secondsPerStep = try Self.measureStep(config: config, options: options, data: data)
        // Ten evaluations of four batches, each batch a forward pass (about a third of a step),
        // come out of the same budget, with a few percent to spare.
        options.evalBatches = 4
        let evaluationSteps = 10 * Double(options.evalBatches) / 3
        options.steps = max(20, Int(minutes * 60 * 0.97 / secondsPerStep - evaluationSteps))
        options.warmupSteps = max(10, options.steps / 25)
        options.evalInterval = max(2, options.steps / 10)
        options.checkpointInterval = max(10, options.steps / 5)
        let model = try TransformerLM(config: config, seed: seed)
        let runPath = (directory as NSString).appendingPathComponent("run")
        let trainer = try Trainer(model: model, options: options, training: data, validation: nil, validationFraction: 0.05,
                                  tokenizer: tokenizer, runDirectory: runPath)
        say(String(format: "training %d parameters for %d steps (%.2f s each, %d tokens per step), about %.1f minutes",
                   model.parameterCount, options.steps, secondsPerStep, options.batchSize * options.contextLength,
                   Double(options.steps) * secondsPerStep / 60))
        Interrupt.install()
        // A hard stop well past the budget, in case the machine slows down (a checkpoint is written).
        let finished = try TrainCommand.train(trainer, quiet: quiet, timeLimit: minutes * 60 * 1.25).finished
        if let last = trainer.records.last(where: { $0.valLoss != nil }) {
            say(String(format: "final validation loss %.3f nats per token, %@ (step %d, %.0f tokens)", last.valLoss!,
                       last.valBitsPerByte.map { String(format: "%.3f bits per byte", $0) } ?? "", last.step, Double(last.tokens)))
        }
        if !finished { say("stopped at step \(trainer.step) of \(options.steps); continue with: lm train --resume \(runPath)") }
        Interrupt.exitIfInterrupted()

        // 5. Samples.
        let prompts = input == nil ? ["And God said", "In the beginning", "The LORD is my"] : ["The", "Once", "It was"]
        for (index, prompt) in prompts.enumerated() {
            let text = try sample(model: model, tokenizer: tokenizer, prompt: prompt, seed: seed + UInt64(index))
            print("--- sample \(index + 1) ---\n\(prompt)\(text)\n")
        }
        say("model: \(runPath) (try: lm generate --model \(runPath) --prompt \"...\")")
        say("loss plot: \(trainer.plotPath)")
    }

    /// The run directory: --output, else the first of lm-demo, lm-demo-2, … that holds no run.
    private func runDirectory() throws -> String {
        if let output {
            if Trainer.hasRun(in: (output as NSString).appendingPathComponent("run")) {
                throw ModelError("\(output) already holds a demo run; choose another --output")
            }
            return output
        }
        var candidate = "lm-demo", number = 1
        while FileManager.default.fileExists(atPath: candidate) {
            number += 1
            candidate = "lm-demo-\(number)"
        }
        return candidate
    }

    /// The training text: --input, or the King James Bible without its verse references.
    private func corpus() throws -> Data {
        if let input {
            let data = try InputFile.read(input)
            guard String(data: data, encoding: .utf8) != nil else { throw ModelError("\(input): not UTF-8 text") }
            return data
        }
        let bible = "/usr/bin/bible"
        guard FileManager.default.isExecutableFile(atPath: bible) else {
            throw ModelError("\(bible) is missing: run scripts/setup.sh (it installs bible-kjv), or give --input FILE")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bible)
        process.arguments = ["-f", "Gen1:1-Rev22:21"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ModelError("\(bible) failed with status \(process.terminationStatus)") }
        return Data(Self.strippingVerseReferences(String(decoding: data, as: UTF8.self)).utf8)
    }

    /// "Ge1:1 In the beginning…" → "In the beginning…": the first word of a line is dropped when
    /// it is a book abbreviation followed by chapter:verse.
    static func strippingVerseReferences(_ text: String) -> String {
        var lines: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let space = line.firstIndex(of: " "), line[..<space].contains(":"), line[..<space].last?.isNumber == true {
                lines.append(line[line.index(after: space)...])
            } else {
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Seconds per training step at these settings on this machine: the median of four steps
    /// timed after one to warm up, on a scratch model.
    static func measureStep(config: ModelConfig, options: TrainingOptions, data: TokenDataset) throws -> Double {
        let model = try TransformerLM(config: config, seed: 1)
        let step = try TrainStep(model: model, optimizer: try AdamW(layout: model.layout, options: options.adamW),
                                 batch: options.batchSize, length: options.contextLength, maxGradientNorm: options.gradientClip)
        var sampler = BatchSampler(batch: options.batchSize, length: options.contextLength, state: 99)
        var times: [Double] = []
        for _ in 0..<5 {
            let start = Date()
            try step.run(sampler: &sampler, data: data, learningRate: 1e-4)
            times.append(Date().timeIntervalSince(start))
        }
        let timed = times.dropFirst().sorted()
        return (timed[1] + timed[2]) / 2
    }

    private func sample(model: TransformerLM, tokenizer: Tokenizer, prompt: String, seed: UInt64) throws -> String {
        var ids: [Int32] = []
        let stops: Set<Int32> = tokenizer.specialTokenID(Self.special).map { [$0] } ?? []
        _ = try Generator(model: model).generate(
            prompt: tokenizer.encode(prompt),
            options: GenerationOptions(maxTokens: 80, temperature: 0.8, topP: 0.95, seed: seed, stopTokens: stops)) { id in
                if !stops.contains(id) { ids.append(id) }
                return true
            }
        return try tokenizer.decode(ids)
    }

    private func say(_ text: String) { if !quiet { printError(text) } }
}
