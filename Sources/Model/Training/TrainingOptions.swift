/// Everything a training run tunes (handout §5–7), with defaults that work for a small model.
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
    public var adamW = AdamWOptions()
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

    /// Bounds on the products of the options (each far above what a step on one machine can
    /// hold; the memory a run needs is checked against the machine when it is allocated).
    public static let maximumTokensPerStep = 1 << 30
    public static let maximumValidationWindows = 1 << 24

    public var schedule: CosineSchedule {
        CosineSchedule(maxLearningRate: maxLearningRate, minLearningRate: minLearningRate, warmupSteps: warmupSteps,
                       cosineSteps: cosineSteps ?? steps)
    }

    /// Rejects impossible settings, naming the field.
    public func validate(contextLimit: Int) throws {
        guard steps >= 1 else { throw ModelError("steps must be at least 1, got \(steps)") }
        guard batchSize >= 1 else { throw ModelError("batchSize must be at least 1, got \(batchSize)") }
        guard contextLength >= 1, contextLength <= contextLimit else {
            throw ModelError("contextLength \(contextLength) must be in 1...\(contextLimit) (the model's context_length)")
        }
        guard gradientClip.isFinite, gradientClip > 0 else { throw ModelError("gradientClip must be a positive number, got \(gradientClip)") }
        guard evalInterval >= 1, evalBatches >= 1 else {
            throw ModelError("evalInterval (\(evalInterval)) and evalBatches (\(evalBatches)) must be at least 1")
        }
        guard checkpointInterval >= 1 else { throw ModelError("checkpointInterval must be at least 1, got \(checkpointInterval)") }
        // Sizes that multiply: a batch of tokens, and the fixed validation windows.
        guard let tokens = SizeLimits.product([batchSize, contextLength]), tokens <= Self.maximumTokensPerStep else {
            throw ModelError("batchSize \(batchSize) × contextLength \(contextLength) tokens per step is more than \(Self.maximumTokensPerStep)")
        }
        guard let windows = SizeLimits.product([evalBatches, batchSize]), windows <= Self.maximumValidationWindows else {
            throw ModelError("evalBatches \(evalBatches) × batchSize \(batchSize) validation windows is more than \(Self.maximumValidationWindows)")
        }
        try schedule.validate()
        try adamW.validate()
    }

    // `training_state.json` keeps AdamW's fields beside the others, as runs written before
    // `adamW` was one value did; `decayGains` is not stored (runs train with its default).
    enum CodingKeys: String, CodingKey {
        case steps, batchSize, contextLength, maxLearningRate, minLearningRate, warmupSteps, cosineSteps
        case beta1, beta2, epsilon, weightDecay
        case gradientClip, evalInterval, evalBatches, checkpointInterval, seed
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steps = try c.decode(Int.self, forKey: .steps)
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        contextLength = try c.decode(Int.self, forKey: .contextLength)
        maxLearningRate = try c.decode(Double.self, forKey: .maxLearningRate)
        minLearningRate = try c.decode(Double.self, forKey: .minLearningRate)
        warmupSteps = try c.decode(Int.self, forKey: .warmupSteps)
        cosineSteps = try c.decodeIfPresent(Int.self, forKey: .cosineSteps)
        adamW = AdamWOptions(beta1: try c.decode(Float.self, forKey: .beta1), beta2: try c.decode(Float.self, forKey: .beta2),
                             epsilon: try c.decode(Float.self, forKey: .epsilon), weightDecay: try c.decode(Float.self, forKey: .weightDecay))
        gradientClip = try c.decode(Double.self, forKey: .gradientClip)
        evalInterval = try c.decode(Int.self, forKey: .evalInterval)
        evalBatches = try c.decode(Int.self, forKey: .evalBatches)
        checkpointInterval = try c.decode(Int.self, forKey: .checkpointInterval)
        seed = try c.decode(UInt64.self, forKey: .seed)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(steps, forKey: .steps)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(contextLength, forKey: .contextLength)
        try c.encode(maxLearningRate, forKey: .maxLearningRate)
        try c.encode(minLearningRate, forKey: .minLearningRate)
        try c.encode(warmupSteps, forKey: .warmupSteps)
        try c.encodeIfPresent(cosineSteps, forKey: .cosineSteps)
        try c.encode(adamW.beta1, forKey: .beta1)
        try c.encode(adamW.beta2, forKey: .beta2)
        try c.encode(adamW.epsilon, forKey: .epsilon)
        try c.encode(adamW.weightDecay, forKey: .weightDecay)
        try c.encode(gradientClip, forKey: .gradientClip)
        try c.encode(evalInterval, forKey: .evalInterval)
        try c.encode(evalBatches, forKey: .evalBatches)
        try c.encode(checkpointInterval, forKey: .checkpointInterval)
        try c.encode(seed, forKey: .seed)
    }
}
