import ArgumentParser
import Model

/// `lm train`'s training settings: one option per field of ``TrainingOptions``, checked here
/// under their flag names and turned into the options in one place.
struct TrainingOptionGroup: ParsableArguments {
    @Option(help: "Optimizer steps in all (with --resume: a new total).") var steps: Int?
    @Option(help: "Sequences per step.") var batchSize = 16
    @Option(help: "Tokens per sequence (default: the model's context length).") var context: Int?
    @Option(help: "Peak learning rate α_max.") var lrMax = 3e-3
    @Option(help: "Final learning rate α_min.") var lrMin = 3e-4
    @Option(help: "Linear warm-up steps T_w (default: 100, or a tenth of the steps when fewer than 1,000).") var warmup: Int?
    @Option(help: "Step at which the cosine reaches α_min, T_c (default: --steps).") var cosineSteps: Int?
    @Option(help: "AdamW β1.") var beta1: Float = 0.9
    @Option(help: "AdamW β2.") var beta2: Float = 0.95
    @Option(help: "AdamW ε.") var eps: Float = 1e-8
    @Option(help: "AdamW decoupled weight decay λ (matrices and embedding; not norm gains).") var weightDecay: Float = 0.1
    @Option(help: "Global gradient-norm bound.") var clip = 1.0
    @Option(help: "Evaluate every this many steps.") var evalInterval = 100
    @Option(help: "Validation batches per evaluation.") var evalBatches = 8
    @Option(help: "Checkpoint every this many steps.") var checkpointInterval = 500
    @Option(help: "Seed of the initialisation and the batch sampler.") var seed: UInt64 = 0

    func validate() throws {
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if let context, context < 1 { throw ValidationError("--context must be at least 1, got \(context)") }
        guard clip.isFinite, clip > 0 else { throw ValidationError("--clip must be a positive number, got \(clip)") }
        guard evalInterval >= 1, evalBatches >= 1 else { throw ValidationError("--eval-interval and --eval-batches must be at least 1") }
        guard checkpointInterval >= 1 else { throw ValidationError("--checkpoint-interval must be at least 1, got \(checkpointInterval)") }
    }

    /// The options for a new run of a model whose context is `modelContext`.
    func trainingOptions(modelContext: Int) throws -> TrainingOptions {
        var options = TrainingOptions()
        options.steps = steps ?? options.steps
        options.batchSize = batchSize
        options.contextLength = context ?? modelContext
        guard options.contextLength <= modelContext else {
            throw ValidationError("--context \(options.contextLength) must be in 1...\(modelContext) (the model's context_length)")
        }
        options.maxLearningRate = lrMax
        options.minLearningRate = lrMin
        options.warmupSteps = warmup ?? min(100, options.steps / 10)
        options.cosineSteps = cosineSteps
        options.adamW = AdamWOptions(beta1: beta1, beta2: beta2, epsilon: eps, weightDecay: weightDecay)
        options.gradientClip = clip
        options.evalInterval = evalInterval
        options.evalBatches = evalBatches
        options.checkpointInterval = checkpointInterval
        options.seed = seed
        return options
    }
}
