import Foundation
import Kernels
import TensorIO
import Tokenizer

/// Progress of a run, reported after every step.
public struct TrainingProgress: Sendable {
    public let step: Int
    public let steps: Int
    public let loss: Double
    public let learningRate: Double
    public let tokensPerSecond: Double
    public let elapsedSeconds: Double
    /// The evaluation just made at this step, if any.
    public let evaluation: TrainingRecord?
    /// Seconds this step spent in the small all-reduce where the ranks agree on the loss, which
    /// includes waiting for the slowest rank to finish its backward pass (0 alone).
    public let synchronizationSeconds: Double
    /// Seconds this step spent moving gradients and parameters between the ranks (0 alone).
    public let exchangeSeconds: Double
}

/// The training loop (handout §5–7) over a run directory: random batches from a token file,
/// a ``TrainingSession`` step, global-norm clipping, AdamW on the cosine schedule, periodic
/// evaluation on fixed validation windows, and checkpoints from which ``resume(runDirectory:steps:parallelism:acceptChangedCheckpoint:)``
/// continues bit for bit.
///
/// Three parts: the run directory's files (``RunDirectory``), the step (``TrainStep``), and this
/// loop's cadence: evaluation, logging, checkpoints.
///
/// Data parallelism (``DataParallelism``): every rank of a ``TrainingGroup`` builds the same
/// trainer over the same files; each computes the gradients of its own rows of every batch
/// (`batchSize / ranks` of them), the group averages them, and every rank applies the same update,
/// so one run on N ranks follows the run one process would make with the whole batch, to float
/// rounding. Rank 0 alone writes; every checkpoint first checks that all ranks hold bit-identical
/// weights. The run directory and the data must be at the same paths on every rank.
public final class Trainer {
    public let model: TransformerLM
    /// The LoRA adapter trained instead of the model (which then stays frozen), if any.
    public var adapter: LoRAAdapter? { trainStep.session.adapter }
    public let options: TrainingOptions
    public var runDirectory: String { directory.path }
    let directory: RunDirectory
    public private(set) var step: Int
    public private(set) var records: [TrainingRecord]
    public let parallelism: DataParallelism
    /// The optimisation step this loop repeats.
    public let trainStep: TrainStep
    var optimizer: AdamW { trainStep.optimizer }
    var shards: OptimizerShards? { trainStep.shards }
    private var sampler: BatchSampler
    private let training: TokenDataset, validation: TokenDataset?
    var state: TrainingState
    /// Bytes of text per validation target token, for bits per byte; nil without a tokenizer.
    private let validationBytes: Int?
    private let validationStarts: [Int]
    /// Rank 0's hold on the run directory: from creation or resume to the end of ``run(shouldStop:progress:)``.
    private var lock: RunLock?

    /// A new run: writes the tokenizer (when given) into `runDirectory` and starts at step 0.
    /// `validation` nil holds out `validationFraction` of `training` instead. With `adapter`
    /// (and the path of the base `model`, loaded again on resume) only the adapter trains and
    /// the checkpoints hold it in PEFT's files.
    public convenience init(model: TransformerLM, options: TrainingOptions, training: TokenDataset, validation: TokenDataset?,
                            validationFraction: Double = 0.05, tokenizer: Tokenizer?, runDirectory: String,
                            parallelism: DataParallelism = .none, adapter: LoRAAdapter? = nil, baseModel: String? = nil) throws {
        var options = options
        options.cosineSteps = options.cosineSteps ?? options.steps  // fixed now: extending a run keeps its schedule
        try options.validate(contextLimit: model.config.contextLength)
        let (trainingSet, validationSet) = try validation.map { (training, $0) } ?? training.split(validationFraction: validationFraction)
        var state = TrainingState(step: 0, tokens: 0, samplerState: String(options.seed), elapsedSeconds: 0, options: options,
                                  trainingData: Self.absolute(training.path), validationData: validation.map { Self.absolute($0.path) },
                                  validationFraction: validation == nil ? validationFraction : nil)
        if let adapter {
            guard let baseModel else { throw ModelError("LoRA training: the base model's path is needed to resume the run") }
            (state.lora, state.baseModel, state.baseQuantized) = (adapter.settings, Self.absolute(baseModel), model.isQuantized)
        }
        let layout = adapter?.layout ?? model.layout
        let segments = TrainStep.shards(count: layout.totalCount, parallelism: parallelism)?.segments[parallelism.group.rank]
        // Everything is checked and allocated before the first file is touched.
        try self.init(model: model, state: state, training: trainingSet, validation: validationSet, records: [],
                      optimizer: try AdamW(layout: layout, options: options.adamW, segments: segments), tokenizer: tokenizer,
                      runDirectory: runDirectory, parallelism: parallelism, adapter: adapter)
        if parallelism.group.rank == 0 {
            guard !RunDirectory.hasRun(in: runDirectory) else {
                throw ModelError("\(runDirectory) already holds a run: continue it with --resume, or choose another directory")
            }
            try directory.create()
            lock = try RunLock(directory: runDirectory)
            directory.removeStaleFiles()
            if let tokenizer { try TokenizerDirectory.save(tokenizer, to: runDirectory) }
        }
    }

    /// Continues the run in `runDirectory` from its newest complete checkpoint, optionally to a
    /// new total of `steps` (the schedule stays the one the run started with), on any number of
    /// ranks: a checkpoint holds the whole optimizer state, whoever wrote it.
    ///
    /// Refuses, naming what differs, when the checkpoint's weights or configuration are not the
    /// ones its state recorded (files copied from another run, an edited `config.json`), unless
    /// `acceptChangedCheckpoint`; and when `steps` is below the step the run has reached.
    public static func resume(runDirectory: String, steps: Int? = nil, parallelism: DataParallelism = .none,
                              acceptChangedCheckpoint: Bool = false) throws -> Trainer {
        let directory = RunDirectory(path: runDirectory)
        // Rank 0 writes; it holds the lock before it reads, so no writer can be half-way through.
        let lock = parallelism.group.rank == 0 && FileManager.default.fileExists(atPath: runDirectory)
            ? try RunLock(directory: runDirectory) : nil
        let folder = directory.checkpoint
        var state = try folder.readState()
        if let steps {
            guard steps >= state.step else {
                throw ModelError("steps \(steps) is below the step the run in \(runDirectory) has reached (\(state.step))")
            }
            state.options.steps = steps
        }
        let model: TransformerLM, adapter: LoRAAdapter?
        if state.lora != nil {
            // A LoRA run: the base model from where it was, the adapter from the checkpoint.
            guard let baseModel = state.baseModel else { throw ModelError("\(folder.file(CheckpointFolder.stateFile)): a LoRA run without its base model's path") }
            // As the run loaded it: a quantized base keeps its blocks (QLoRA), bit for bit.
            model = state.baseQuantized == true ? try PretrainedModel.load(baseModel, keepQuantized: true).model : try Checkpoint.load(modelAt: baseModel)
            adapter = try PEFTAdapter.read(directory: folder.path, config: model.config)
            try folder.checkStep(of: PEFTAdapter.weightsFile, is: state.step)
        } else {
            model = try Checkpoint.load(directory: folder.path)
            adapter = nil
            try folder.checkStep(of: Checkpoint.weightsFile, is: state.step)
        }
        try folder.checkStep(of: CheckpointFolder.optimizerFile, is: state.step)
        if !acceptChangedCheckpoint { try state.requireRecorded(model, adapter: adapter, in: folder.path) }
        let layout = adapter?.layout ?? model.layout
        let segments = TrainStep.shards(count: layout.totalCount, parallelism: parallelism)?.segments[parallelism.group.rank] ?? [0..<layout.totalCount]
        let count = segments.reduce(0) { $0 + $1.count }
        let first = TensorBuffer(count: count), second = TensorBuffer(count: count)
        try folder.readMoments(layout: layout, segments: segments, first: first, second: second)
        let optimizer = try AdamW(layout: layout, options: state.options.adamW, firstMoment: first, secondMoment: second,
                                  step: state.step, segments: segments)
        let trainingFile = try TokenDataset(path: state.trainingData, vocabSize: model.config.vocabSize)
        let (training, validation): (TokenDataset, TokenDataset?)
        if let fraction = state.validationFraction {
            (training, validation) = try trainingFile.split(validationFraction: fraction)
        } else {
            training = trainingFile
            validation = try state.validationData.map { try TokenDataset(path: $0, vocabSize: model.config.vocabSize) }
        }
        let records = try directory.readRecords()
        let trainer = try Trainer(model: model, state: state, training: training, validation: validation,
                                  records: records.filter { $0.step <= state.step }, optimizer: optimizer,
                                  tokenizer: try Checkpoint.loadTokenizer(directory: runDirectory), runDirectory: runDirectory,
                                  parallelism: parallelism, adapter: adapter)
        trainer.lock = lock
        if lock != nil { directory.removeStaleFiles() }
        return trainer
    }

    private init(model: TransformerLM, state: TrainingState, training: TokenDataset, validation: TokenDataset?, records: [TrainingRecord],
                 optimizer: AdamW, tokenizer: Tokenizer?, runDirectory: String, parallelism: DataParallelism, adapter: LoRAAdapter?) throws {
        let options = state.options
        try options.validate(contextLimit: model.config.contextLength)
        guard training.windowCount(length: options.contextLength) > 0 else {
            throw ModelError("\(training.path): \(training.count) training tokens are too few for a context of \(options.contextLength)")
        }
        if let validation, validation.windowCount(length: options.contextLength) == 0 {
            throw ModelError("\(validation.path): \(validation.count) validation tokens are too few for a context of \(options.contextLength)")
        }
        if let tokenizer { try model.config.requireFits(tokenizer, source: "the model to train") }
        self.model = model
        self.options = options
        directory = RunDirectory(path: runDirectory)
        self.state = state
        self.training = training
        self.validation = validation
        self.records = records
        self.parallelism = parallelism
        trainStep = try TrainStep(model: model, optimizer: optimizer, batch: options.batchSize, length: options.contextLength,
                                  maxGradientNorm: options.gradientClip, parallelism: parallelism, adapter: adapter)
        step = state.step
        guard let samplerState = UInt64(state.samplerState) else { throw ModelError("\(CheckpointFolder.stateFile): bad sampler state '\(state.samplerState)'") }
        sampler = BatchSampler(batch: options.batchSize, length: options.contextLength, state: samplerState)
        // Fixed validation windows, evenly spread: the same every evaluation, in every resume.
        let (starts, bytes) = Self.validationWindows(validation, options: options, tokenizer: tokenizer)
        try validation?.requireIntact()
        validationStarts = starts
        validationBytes = bytes
    }

    /// Starts of `evalBatches × batchSize` windows spread evenly over `validation`, and the bytes
    /// of text their target tokens stand for (nil without a tokenizer).
    private static func validationWindows(_ validation: TokenDataset?, options: TrainingOptions, tokenizer: Tokenizer?) -> ([Int], Int?) {
        guard let validation else { return ([], nil) }
        let windows = options.evalBatches * options.batchSize, available = validation.windowCount(length: options.contextLength)
        let starts = (0..<windows).map { $0 * available / windows }
        guard let tokenizer else { return (starts, nil) }
        var bytes = 0
        var ids = [Int32](repeating: 0, count: options.contextLength)
        for start in starts {
            ids.withUnsafeMutableBufferPointer { validation.copy(from: start + 1, count: options.contextLength, to: $0.baseAddress!) }
            for id in ids where Int(id) < tokenizer.vocabularySize { bytes += tokenizer.vocabulary[Int(id)].count }
        }
        return (starts, bytes)
    }


    /// Trains until `options.steps`, or until `shouldStop` (checked between steps) says so; then
    /// writes a checkpoint. Throws, without writing, when the loss stops being finite.
    /// Returns true when all the steps were done. With several ranks, all of them stop together
    /// when any one's `shouldStop` says so, after the step in progress. An error thrown by
    /// `progress` ends the run there, without a checkpoint.
    @discardableResult
    public func run(shouldStop: () -> Bool = { false }, progress: (TrainingProgress) throws -> Void = { _ in }) throws -> Bool {
        try holdLock()
        defer { lock = nil }  // the run is written: another process may take it over now
        try checkReplicasAgree(when: "at the start")
        let start = Date()
        let elapsedBefore = state.elapsedSeconds
        let schedule = options.schedule
        let tokensPerStep = options.batchSize * options.contextLength
        var lossSum = 0.0, lossCount = 0
        let logInterval = max(1, min(options.evalInterval, 10))
        var lastStepTime = Date()
        var stepRate = 0.0
        while step < options.steps {
            if group.size == 1, shouldStop() { break }
            let learningRate = schedule.learningRate(at: step)
            let outcome: TrainStep.Outcome
            do {
                outcome = try trainStep.run(sampler: &sampler, data: training, learningRate: learningRate,
                                            wantsToStop: group.size > 1 && shouldStop())
            } catch let failure as TrainStep.NonFiniteLoss {
                let rank = failure.ranks == 1 ? "" : " on rank \(failure.rank) of \(failure.ranks)"
                let every = failure.ranks == 1 ? "stopping" : "stopping every rank"
                throw ModelError("step \(step + 1): the training loss\(rank) is \(failure.loss); \(every). The last checkpoint in \(runDirectory) (step \(state.step)) is intact",
                                 isCollective: failure.ranks > 1)
            }
            let loss = outcome.loss
            step += 1
            state.tokens += tokensPerStep
            lossSum += loss
            lossCount += 1
            let now = Date()
            let seconds = now.timeIntervalSince(lastStepTime)
            lastStepTime = now
            stepRate = stepRate == 0 ? Double(tokensPerStep) / seconds : 0.9 * stepRate + 0.1 * Double(tokensPerStep) / seconds
            state.elapsedSeconds = elapsedBefore + now.timeIntervalSince(start)
            var evaluation: TrainingRecord?
            let evaluate = step % options.evalInterval == 0 || step == options.steps
            if evaluate || step % logInterval == 0 {
                var record = TrainingRecord(step: step, tokens: state.tokens, trainLoss: lossSum / Double(lossCount), learningRate: learningRate,
                                            elapsedSeconds: state.elapsedSeconds)
                if evaluate, validation != nil {
                    let (loss, bitsPerByte) = try self.evaluate()
                    record.valLoss = loss
                    record.valBitsPerByte = bitsPerByte
                    evaluation = record
                }
                records.append(record)
                lossSum = 0
                lossCount = 0
                if evaluate { try writeMetrics() }
            }
            try progress(TrainingProgress(step: step, steps: options.steps, loss: loss, learningRate: learningRate, tokensPerSecond: stepRate,
                                          elapsedSeconds: state.elapsedSeconds, evaluation: evaluation,
                                          synchronizationSeconds: outcome.synchronizationSeconds, exchangeSeconds: outcome.exchangeSeconds))
            if step % options.checkpointInterval == 0 && step < options.steps { try saveCheckpoint() }
            if outcome.stopRequested { break }
        }
        try writeMetrics()
        try saveCheckpoint()
        return step >= options.steps
    }

    /// The mean loss over the fixed validation windows (nats per token) and in bits per byte of
    /// the text those tokens stand for (nil without a tokenizer).
    /// With several ranks, each evaluates every `ranks`-th group of windows and the sums are combined.
    public func evaluate() throws -> (loss: Double, bitsPerByte: Double?) {
        guard let validation else { throw ModelError("no validation data") }
        let batch = trainStep.localRows.count, length = options.contextLength
        let (session, inputs, targets) = (trainStep.session, trainStep.tokens.inputs, trainStep.tokens.targets)
        let chunks = validationStarts.count / batch
        var total = [0.0]
        for chunk in stride(from: group.rank, to: chunks, by: group.size) {
            for row in 0..<batch {
                BatchSampler.fill(validation, start: validationStarts[chunk * batch + row], length: length, row: row, inputs: inputs, targets: targets)
            }
            try validation.requireIntact()
            total[0] += try session.loss(inputs: UnsafeBufferPointer(inputs), targets: UnsafeBufferPointer(targets))
        }
        total.withUnsafeMutableBufferPointer { group.allReduceSum($0) }
        let loss = total[0] / Double(chunks)
        let tokens = Double(validationStarts.count * length)
        return (loss, validationBytes.map { loss * tokens / Foundation.log(2) / Double($0) })
    }

    /// Writes a checkpoint (weights, configuration, optimizer moments, state) into a fresh folder
    /// and publishes it as the run's current one (``RunDirectory``): the previous checkpoint stays
    /// until then. With several ranks (all must call it): first checks that their weights are
    /// bit-identical, then rank 0 writes (gathering the sharded moments first).
    public func saveCheckpoint() throws {
        let fingerprint = try checkReplicasAgree(when: "before writing the checkpoint")
        state.step = step
        state.samplerState = String(sampler.state)
        guard group.rank == 0 else {
            sendMomentsToRankZero()
            return
        }
        let heldAlready = lock != nil
        try holdLock()
        defer { if !heldAlready { lock = nil } }
        state.recordWeights(config: model.config, fingerprint: fingerprint)
        let files = adapter == nil ? CheckpointFolder.files : CheckpointFolder.adapterFiles
        try directory.publishCheckpoint(step: step, files: files) { folder in
            if let adapter { try folder.writeAdapter(adapter, baseModel: state.baseModel, step: step) } else { try folder.writeModel(model, step: step) }
            try writeMoments(to: folder.file(CheckpointFolder.optimizerFile))
            try folder.writeState(state)
        }
    }

    /// Rank 0 holds the run directory's lock (taken at creation or resume, again when released).
    private func holdLock() throws {
        if group.rank == 0, lock == nil { lock = try RunLock(directory: runDirectory) }
    }

    /// The records so far as `metrics.jsonl` and `loss.svg`; by rank 0 only.
    private func writeMetrics() throws {
        guard group.rank == 0 else { return }
        try directory.writeMetrics(records)
    }

    /// The run's loss plot, `loss.svg`.
    public var plotPath: String { directory.file(RunDirectory.plotFile) }

    /// Whether `directory` already holds a run (a checkpoint's `training_state.json`).
    public static func hasRun(in directory: String) -> Bool { RunDirectory.hasRun(in: directory) }

    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
    }
}
