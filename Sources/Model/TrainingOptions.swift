/// Everything `lm train` tunes (handout §5–7), with defaults that work for a small model.
/// Stored in a run's `training_state.json`, so a resumed run continues with the same settings.
public struct TrainingOptions: Codable, Sendable, Equatable {
    /// Optimizer steps in all (a resumed run stops at the same total).
    public var steps = 2000
    /// Sequences per step, and tokens per sequence (at most the model's context length).
    public var batchSize = 16
    public var contextLength = 128
    /// Cosine schedule: α_max, α_min, warm-up steps T_w and the cosine's end T_c (nil: `steps`).
    public var maxLearningRate = 3e-3
    public var minLearningRate = 3e-4
    public var warmupSteps = 100
    public var cosineSteps: Int?
    /// AdamW's β1, β2, ε and decoupled weight decay λ (matrices and embedding only).
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var epsilon: Float = 1e-8
    public var weightDecay: Float = 0.1
    /// Global gradient-norm bound.
    public var gradientClip = 1.0
    /// Evaluate every this many steps, on this many batches of fixed validation windows.
    public var evalInterval = 100
    public var evalBatches = 8
    /// Write a checkpoint every this many steps (and at the end, and on an interrupt).
    public var checkpointInterval = 500
    /// Seeds the batch sampler (and, when training from a configuration, the initialisation).
    public var seed: UInt64 = 0

    public init() {}

    public var schedule: CosineSchedule {
        CosineSchedule(maxLearningRate: maxLearningRate, minLearningRate: minLearningRate, warmupSteps: warmupSteps,
                       cosineSteps: cosineSteps ?? steps)
    }

    public var adamW: AdamWOptions {
        AdamWOptions(beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
    }

    /// Rejects impossible settings, naming the option as the command line spells it.
    public func validate(contextLimit: Int) throws {
        guard steps >= 1 else { throw ModelError("--steps must be at least 1, got \(steps)") }
        guard batchSize >= 1 else { throw ModelError("--batch-size must be at least 1, got \(batchSize)") }
        guard contextLength >= 1, contextLength <= contextLimit else {
            throw ModelError("--context \(contextLength) must be in 1...\(contextLimit) (the model's context_length)")
        }
        guard gradientClip.isFinite, gradientClip > 0 else { throw ModelError("--clip must be a positive number, got \(gradientClip)") }
        guard evalInterval >= 1, evalBatches >= 1 else { throw ModelError("--eval-interval and --eval-batches must be at least 1") }
        guard checkpointInterval >= 1 else { throw ModelError("--checkpoint-interval must be at least 1, got \(checkpointInterval)") }
        try schedule.validate()
        try adamW.validate()
    }
}
