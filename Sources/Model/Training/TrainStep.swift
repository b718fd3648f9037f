import Dispatch
import Kernels

/// One optimisation step, the body of every training loop here (llm.c's loop body, handout
/// §5–7): draw a batch, compute the gradients of this rank's rows, average them over the ranks,
/// clip them by their global norm, and apply AdamW. ``Trainer``, `lm demo`, the bench and the
/// tests all call this one step.
///
/// ```swift
/// let model = try TransformerLM(config: config, seed: 0)
/// let optimizer = try AdamW(layout: model.layout, options: AdamWOptions())
/// let step = try TrainStep(model: model, optimizer: optimizer, batch: 8, length: 256, maxGradientNorm: 1)
/// var sampler = BatchSampler(batch: 8, length: 256, state: 0)
/// let outcome = try step.run(sampler: &sampler, data: data, learningRate: 3e-4)   // outcome.loss in nats
/// ```
///
/// Everything a step touches is allocated here: a step allocates nothing.
public final class TrainStep {
    public let model: TransformerLM
    public let optimizer: AdamW
    /// Forward, loss and backward for this rank's rows.
    public let session: TrainingSession
    public let parallelism: DataParallelism
    /// Sequences per step over all ranks, and tokens per sequence.
    public let batch: Int, length: Int
    /// The global gradient-norm bound.
    public let maxGradientNorm: Double
    /// This rank's rows of every batch.
    public let localRows: Range<Int>
    /// The parameters each rank's optimizer owns, when the optimizer state is sharded.
    let shards: OptimizerShards?
    /// This rank's rows of the current batch: inputs and next-token targets.
    let tokens: TokenBatch
    /// Per step: every rank's loss and stop request, summed over the group (one small all-reduce).
    var stepSummary: [Double]

    /// What one step did.
    public struct Outcome: Sendable {
        /// The mean next-token loss of the whole batch (every rank's rows), in nats.
        public let loss: Double
        /// The global gradient norm before clipping.
        public let gradientNorm: Double
        /// Whether any rank asked to stop after this step.
        public let stopRequested: Bool
        /// Seconds in the small all-reduce where the ranks agree on the loss, which includes
        /// waiting for the slowest rank (0 alone).
        public let synchronizationSeconds: Double
        /// Seconds moving gradients and parameters between the ranks (0 alone).
        public let exchangeSeconds: Double
    }

    /// The loss of some rank was not finite: the step stops before the update, on every rank.
    public struct NonFiniteLoss: Error, Sendable {
        /// The first rank whose loss was not finite, and how many ranks there are.
        public let rank: Int, ranks: Int
        public let loss: Double
    }

    /// batch: sequences per step over all ranks (a multiple of the group's size); length at most
    /// the model's context. Throws naming the field when either does not fit.
    public init(model: TransformerLM, optimizer: AdamW, batch: Int, length: Int, maxGradientNorm: Double,
                parallelism: DataParallelism = .none, adapter: LoRAAdapter? = nil) throws {
        let ranks = parallelism.group.size
        guard batch >= 1, batch % ranks == 0 else {
            throw ModelError("batch size \(batch) does not split evenly over \(ranks) rank\(ranks == 1 ? "" : "s"): give a positive multiple of \(ranks)",
                             isCollective: true)
        }
        guard maxGradientNorm.isFinite, maxGradientNorm > 0 else {
            throw ModelError("gradient clip: the maximum norm must be a positive number, got \(maxGradientNorm)")
        }
        let localBatch = batch / ranks
        session = try TrainingSession(model: model, batch: localBatch, length: length, adapter: adapter)
        (self.model, self.optimizer, self.parallelism, self.batch, self.length) = (model, optimizer, parallelism, batch, length)
        self.maxGradientNorm = maxGradientNorm
        localRows = (parallelism.group.rank * localBatch)..<((parallelism.group.rank + 1) * localBatch)
        shards = Self.shards(count: session.trainedLayout.totalCount, parallelism: parallelism)
        tokens = TokenBatch(count: localBatch * length)
        stepSummary = [Double](repeating: 0, count: ranks + 1)
    }

    /// The sharding of the optimizer state over `count` trained values for `parallelism`, or nil
    /// when it is not sharded.
    static func shards(count: Int, parallelism: DataParallelism) -> OptimizerShards? {
        guard parallelism.shardsOptimizerState else { return nil }
        let group = parallelism.group
        return OptimizerShards(count: count, ranks: group.size, block: group.bucketElements)
    }

    /// Draws the next batch from `data` with `sampler` (this rank's rows of it), and takes the
    /// step at `learningRate`. With several ranks every rank calls this together; `wantsToStop`
    /// is this rank's wish to stop after the step, shared with all. Throws when `data` is too
    /// short for one window, and ``NonFiniteLoss``, before changing the weights, when any rank's
    /// loss is not finite.
    @discardableResult
    public func run(sampler: inout BatchSampler, data: TokenDataset, learningRate: Double, wantsToStop: Bool = false) throws -> Outcome {
        guard data.windowCount(length: length) > 0 else {
            throw ModelError("\(data.path): \(data.count) tokens are too few for one window of \(length) tokens and its next token")
        }
        sampler.next(from: data, rows: localRows, inputs: tokens.inputs, targets: tokens.targets)
        try data.requireIntact()  // before the batch is used: a step on zeros is never taken
        return try run(inputs: UnsafeBufferPointer(tokens.inputs), targets: UnsafeBufferPointer(tokens.targets),
                       learningRate: learningRate, wantsToStop: wantsToStop)
    }

    /// The step on a batch the caller made: inputs, targets: this rank's rows `[localRows.count,
    /// length]` (targets[r, t] is the token after inputs[r, t]). Throws naming the first id outside
    /// the vocabulary, and ``NonFiniteLoss`` as above.
    @discardableResult
    public func run(inputs: UnsafeBufferPointer<Int32>, targets: UnsafeBufferPointer<Int32>, learningRate: Double,
                    wantsToStop: Bool = false) throws -> Outcome {
        // Each step, and each rank's rows, draw their own dropout (a function of the step: a
        // resumed run draws what the uninterrupted one did).
        let round = UInt64(optimizer.step) &* 0x1_0000 &+ UInt64(parallelism.group.rank)
        let localLoss = try session.computeGradients(inputs: inputs, targets: targets, dropoutRound: round)
        let ((loss, stopRequested), synchronizationSeconds) = try timed { try agreeOnStep(localLoss: localLoss, wantsToStop: wantsToStop) }
        var exchangeSeconds = timed { averageGradients() }.seconds
        let norm = clipGradients()
        optimizer.step(parameters: session.trainedParameters, gradients: session.gradients, learningRate: Float(learningRate))
        if let shards { exchangeSeconds += timed { shards.broadcastFromOwners(session.trainedParameters, group: parallelism.group) }.seconds }
        let alone = parallelism.group.size == 1
        return Outcome(loss: loss, gradientNorm: norm, stopRequested: stopRequested,
                       synchronizationSeconds: alone ? 0 : synchronizationSeconds, exchangeSeconds: alone ? 0 : exchangeSeconds)
    }

    /// `body`'s result and the seconds it took.
    func timed<T>(_ body: () throws -> T) rethrows -> (value: T, seconds: Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let value = try body()
        return (value, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}

/// A batch of token ids for one rank: inputs and targets `[rows, length]`, allocated once.
final class TokenBatch {
    let inputs: UnsafeMutableBufferPointer<Int32>, targets: UnsafeMutableBufferPointer<Int32>

    init(count: Int) {
        inputs = .allocate(capacity: count)
        targets = .allocate(capacity: count)
        inputs.initialize(repeating: 0)
        targets.initialize(repeating: 0)
    }

    deinit {
        inputs.deallocate()
        targets.deallocate()
    }
}
