import Kernels

/// Everything one training step needs for a fixed (batch, length), allocated once: the
/// forward activations with every layer's intermediates, the backward workspace, the per-row
/// losses and the gradients (one flat buffer in the parameters' layout). A step then allocates
/// nothing. The model's own inference buffers are separate, so evaluating with
/// ``TransformerLM/forward(tokens:batch:length:)`` never frees these.
///
/// ``TrainStep`` runs a whole optimisation step on a session; alone, a session gives the loss
/// and the gradients:
///
/// ```swift
/// let session = try TrainingSession(model: model, batch: 8, length: 256)
/// let loss = try session.computeGradients(inputs: x, targets: y)   // x, y: [8·256] ids each
/// // session.gradients: ∂loss/∂parameters, laid out like model.parameters
/// ```
public final class TrainingSession {
    public let model: TransformerLM
    public let batch: Int
    public let length: Int
    /// ∂loss/∂parameters after ``computeGradients(inputs:targets:dropoutRound:)-(UnsafeBufferPointer<Int32>,UnsafeBufferPointer<Int32>,UInt64?)``, laid out like
    /// ``trainedParameters`` (``trainedLayout``).
    public let gradients: TensorBuffer
    /// The model's gradients' named views; nil when the model is frozen under an adapter.
    let gradientTensors: ModelTensors?
    /// The LoRA adapter trained instead of the model, which then stays frozen (quantized or not).
    public let adapter: LoRAAdapter?
    /// What the forward multiplies with when an adapter trains: the model's weights with the
    /// adapter's products, whose gradients go into ``gradients``.
    private let adaptedWeights: InferenceWeights?
    /// What this session trains: the model's parameters, or the adapter's.
    public var trainedParameters: TensorBuffer { adapter?.parameters ?? model.parameters }
    public var trainedLayout: ParameterLayout { adapter?.layout ?? model.layout }
    /// The attention kernel this session runs (the model's ``TransformerLM/attention`` choice
    /// applied to this batch and length).
    public let attentionKernel: AttentionKernel
    let activations: ForwardActivations
    let workspace: BackwardWorkspace
    private let losses: TensorBuffer

    /// batch ≥ 1 and 1 ≤ length ≤ context_length. With `adapter`, only the adapter trains and
    /// the model may keep its weights block-quantized (QLoRA).
    public init(model: TransformerLM, batch: Int, length: Int, adapter: LoRAAdapter? = nil) throws {
        if let adapter {
            try adapter.requireFits(model.config, source: "LoRA training")
            guard model.adapter == nil else { throw ModelError("LoRA training: the model already has an adapter applied; train on the base model") }
        } else {
            try model.requireDense(for: "training")
            guard model.adapter == nil else { throw ModelError("training: the model has an adapter applied; train the adapter (LoRA), or merge it first") }
        }
        if model.config.architecture.finalLogitSoftcap != nil {
            throw ModelError("training: final_logit_softcap has no backward here; only inference runs capped logits")
        }
        guard batch >= 1, length >= 1, length <= model.config.contextLength else {
            throw ModelError("training batch \(batch) × length \(length): both must be positive, length at most context_length \(model.config.contextLength)")
        }
        self.model = model
        self.batch = batch
        self.length = length
        self.adapter = adapter
        let trainedCount = adapter?.layout.totalCount ?? model.layout.totalCount
        attentionKernel = model.attention.kernel(config: model.config, batch: batch, length: length, training: true)
        if attentionKernel == .memoryEfficient, model.config.architecture.slidingWindow != nil {
            throw ModelError("training: the memory-efficient kernel has no sliding window (layers of \(model.config.architecture.family) slide); use the standard kernel")
        }
        // Everything this session keeps, counted before any of it is allocated: the activations,
        // the backward's workspace (as much again, bounded) and the gradients.
        let activationBytes = ForwardActivations.bytes(config: model.config, rows: batch * length, keys: length, mode: .training, kernel: attentionKernel)
        let total = 2 * activationBytes + 4 * Double(trainedCount)
        do {
            try SizeLimits.requireMemory(total, for: "training batch \(batch) × length \(length) with the \(attentionKernel.rawValue) attention kernel")
        } catch let error as ModelError where attentionKernel == .standard {
            throw ModelError(error.message + "; the memory-efficient kernel (--attention memory-efficient or automatic) or a smaller batch needs less")
        }
        activations = ForwardActivations(config: model.config, rows: batch * length, keys: length, mode: .training, kernel: attentionKernel)
        workspace = BackwardWorkspace(config: model.config, batch: batch, length: length, kernel: attentionKernel)
        losses = TensorBuffer(count: batch * length)
        gradients = TensorBuffer(count: trainedCount)
        gradientTensors = adapter == nil ? ModelTensors(layout: model.layout, config: model.config, buffer: gradients) : nil
        adaptedWeights = adapter?.weights(over: model.baseInference, gradients: gradients)
        adapterWeights = adaptedWeights?.layers.flatMap { [$0.qkv, $0.output, $0.gateUp, $0.down] }.compactMap { $0 as? LoRAWeight } ?? []
    }

    /// The adapted weights, whose dropout a training step turns on.
    private let adapterWeights: [LoRAWeight]

    /// inputs, targets: [batch, length] (targets[b, t] is the token after inputs[b, t], or
    /// ``/Kernels/CrossEntropy/ignored``) → the mean next-token cross-entropy in nats over the
    /// targets that count; ``gradients`` then holds its gradient (overwritten, not accumulated
    /// across calls). Throws naming the first id outside the vocabulary.
    ///
    /// `dropoutRound` (a training step's number) turns on the adapter's dropout, drawn anew for
    /// each round; nil runs without it.
    @discardableResult
    public func computeGradients(inputs: UnsafeBufferPointer<Int32>, targets: UnsafeBufferPointer<Int32>, dropoutRound: UInt64? = nil) throws -> Double {
        try check(inputs: inputs, targets: targets)
        for weight in adapterWeights { weight.dropoutRound = dropoutRound }
        defer { for weight in adapterWeights { weight.dropoutRound = nil } }
        let rows = batch * length
        model.forward(tokens: inputs, batch: batch, into: activations, logitRows: 0..<rows, using: adaptedWeights)
        let counted = max(1, CrossEntropy.countedRows(targets))
        let loss = CrossEntropy.forwardBackward(logits: logits, targets: targets, losses: losses.storage, gradientScale: 1 / Float(counted))
        gradients.zero()
        model.backward(tokens: inputs, batch: batch, saved: activations, workspace: workspace, gradients: gradientTensors,
                       weights: adaptedWeights)
        return loss
    }

    /// ``computeGradients(inputs:targets:dropoutRound:)-(UnsafeBufferPointer<Int32>,UnsafeBufferPointer<Int32>,UInt64?)`` on arrays.
    @discardableResult
    public func computeGradients(inputs: [Int32], targets: [Int32], dropoutRound: UInt64? = nil) throws -> Double {
        try inputs.withUnsafeBufferPointer { x in
            try targets.withUnsafeBufferPointer { try computeGradients(inputs: x, targets: $0, dropoutRound: dropoutRound) }
        }
    }

    /// ``loss(inputs:targets:)-(UnsafeBufferPointer<Int32>,UnsafeBufferPointer<Int32>)`` on arrays.
    public func loss(inputs: [Int32], targets: [Int32]) throws -> Double {
        try inputs.withUnsafeBufferPointer { x in try targets.withUnsafeBufferPointer { try loss(inputs: x, targets: $0) } }
    }

    /// The mean loss alone, no gradients (an evaluation on this session's buffers).
    public func loss(inputs: UnsafeBufferPointer<Int32>, targets: UnsafeBufferPointer<Int32>) throws -> Double {
        try check(inputs: inputs, targets: targets)
        model.forward(tokens: inputs, batch: batch, into: activations, logitRows: 0..<(batch * length), using: adaptedWeights)
        return CrossEntropy.forward(logits: logits, targets: targets, losses: losses.storage)
    }

    /// The training activations' logits [B·T, V].
    private var logits: MatrixView { activations.logits!.matrix(rows: batch * length, columns: model.config.vocabSize) }

    private func check(inputs: UnsafeBufferPointer<Int32>, targets: UnsafeBufferPointer<Int32>) throws {
        let config = model.config, count = batch * length
        guard inputs.count == count, targets.count == count else {
            throw ModelError("training step: inputs (\(inputs.count)) and targets (\(targets.count)) must both hold [\(batch), \(length)] = \(count) ids")
        }
        func checkIDs(_ ids: UnsafeBufferPointer<Int32>, _ name: String) throws {
            if let bad = config.firstInvalidToken(in: ids) {
                throw ModelError("\(name): id \(bad.id) at [\(bad.index / length), \(bad.index % length)] is outside 0..<\(config.vocabSize)")
            }
        }
        try checkIDs(inputs, "inputs")
        if let bad = config.firstInvalidToken(in: targets, allowing: CrossEntropy.ignored) {
            throw ModelError("targets: id \(bad.id) at [\(bad.index / length), \(bad.index % length)] is outside 0..<\(config.vocabSize)")
        }
    }
}
