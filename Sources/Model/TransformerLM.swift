import Kernels

/// A decoder-only Transformer language model: token embedding → `numLayers` pre-norm blocks
/// (RMSNorm → causal multi-head self-attention with RoPE → residual; RMSNorm → SwiGLU →
/// residual) → final RMSNorm → `lm_head` → logits.
///
/// All parameters live in one flat buffer laid out by ``ParameterLayout``. The model keeps
/// one set of inference activations, allocated once per (batch, length) and reused; training
/// keeps its own, with every layer's intermediates, in a ``TrainingSession``.
public final class TransformerLM {
    public let config: ModelConfig
    public let layout: ParameterLayout
    /// Every weight, at the offsets of ``layout``.
    public let parameters: TensorBuffer
    let rope: RoPETable
    /// Named views into `parameters`.
    let weights: ModelTensors
    private var activations: ForwardActivations?

    /// A model with the handout's random initialisation, reproducible from `seed`.
    public convenience init(config: ModelConfig, seed: UInt64) throws {
        try config.validate()
        let layout = ParameterLayout(config: config)
        let parameters = TensorBuffer(count: layout.totalCount)
        Initialization.fill(parameters, layout: layout, seed: seed)
        try self.init(config: config, parameters: parameters)
    }

    /// A model over existing parameters laid out by `ParameterLayout(config:)`.
    public init(config: ModelConfig, parameters: TensorBuffer) throws {
        try config.validate()
        self.config = config
        let layout = ParameterLayout(config: config)
        self.layout = layout
        guard parameters.count == layout.totalCount else {
            throw ModelError("parameters: \(parameters.count) values, the configuration needs \(layout.totalCount)")
        }
        self.parameters = parameters
        rope = RoPETable(headDim: config.headDim, maxPositions: config.contextLength, theta: config.ropeTheta)
        weights = ModelTensors(layout: layout, config: config, buffer: parameters)
    }

    /// The attention kernel of full forward passes and of ``TrainingSession``s made after it is
    /// set (``AttentionChoice``; starts as ``AttentionChoice/default``).
    public var attention: AttentionChoice = AttentionChoice.default

    /// Number of parameters.
    public var parameterCount: Int { layout.totalCount }

    /// The weights of tensor `name` (a CS336 state-dict name), e.g. `"layers.0.ln1.weight"`.
    public func tensor(_ name: String) -> UnsafeMutableBufferPointer<Float>? {
        layout.entry(name).map { parameters.slice($0.offset, $0.count) }
    }

    /// tokens: [batch, length] row-major → logits: [batch, length, vocab].
    ///
    /// Throws when `tokens.count != batch · length`, when `length` exceeds the context, or when
    /// an id is outside the vocabulary (naming its position).
    public func forward(tokens: [Int32], batch: Int, length: Int) throws -> [Float] {
        try tokens.withUnsafeBufferPointer { try checkTokens($0, batch: batch, length: length) }
        return [Float](unsafeUninitializedCapacity: batch * length * config.vocabSize) { logits, initialized in
            tokens.withUnsafeBufferPointer {
                forwardPass(tokens: $0, into: activations(batch: batch, length: length), logits: logits)
            }
            initialized = logits.count
        }
    }

    /// tokens: [batch, length] → logits: [batch, length, vocab] written into a buffer the caller
    /// owns (no allocation once the activations for this (batch, length) exist).
    public func forward(tokens: UnsafeBufferPointer<Int32>, batch: Int, length: Int, logits: UnsafeMutableBufferPointer<Float>) throws {
        try checkTokens(tokens, batch: batch, length: length)
        guard logits.count == batch * length * config.vocabSize else {
            throw ModelError("logits: buffer of \(logits.count) values, shape [\(batch), \(length), \(config.vocabSize)] needs \(batch * length * config.vocabSize)")
        }
        forwardPass(tokens: tokens, into: activations(batch: batch, length: length), logits: logits)
    }

    /// Runs block `layer` alone: hidden: [batch, length, d_model] → output: [batch, length, d_model]
    /// (positions 0..<length). For inspecting and timing one block.
    public func forwardBlock(_ layer: Int, hidden: UnsafeBufferPointer<Float>, batch: Int, length: Int,
                             output: UnsafeMutableBufferPointer<Float>) throws {
        guard weights.layers.indices.contains(layer) else {
            throw ModelError("block \(layer) does not exist (the model has \(weights.layers.count))")
        }
        guard batch >= 1, length >= 1, length <= config.contextLength else {
            throw ModelError("block input: batch \(batch) and length \(length) must be positive, length at most \(config.contextLength)")
        }
        let count = batch * length * config.dModel
        guard hidden.count == count, output.count == count else {
            throw ModelError("block input [\(hidden.count)] and output [\(output.count)] must both hold [\(batch), \(length), \(config.dModel)] = \(count) values")
        }
        let saved = activations(batch: batch, length: length)
        let buffers = saved.layer(layer)
        _ = buffers.input.update(fromContentsOf: hidden)
        saved.positions.withUnsafeBufferPointer { positions in
            TransformerBlock.forward(weights: weights.layers[layer], buffers: buffers, dims: attentionDims(batch: batch, length: length),
                                     positions: positions, rope: rope, config: config)
        }
        _ = output.update(fromContentsOf: buffers.output)
    }

    func attentionDims(batch: Int, length: Int) -> AttentionDims {
        AttentionDims(batch: batch, queryLength: length, keyLength: length,
                      heads: config.numHeads, kvHeads: config.numKVHeads, headDim: config.headDim)
    }

    /// The inference activation buffers for (batch, length), reused when they repeat.
    private func activations(batch: Int, length: Int) -> ForwardActivations {
        let kernel = attention.kernel(config: config, batch: batch, length: length, training: false)
        if let existing = activations, existing.batch == batch, existing.length == length, existing.kernel == kernel { return existing }
        activations = nil  // release the old buffers before allocating new ones
        let fresh = ForwardActivations(config: config, batch: batch, length: length, mode: .inference, kernel: kernel)
        activations = fresh
        return fresh
    }

    /// Validates a [batch, length] token array against the configuration.
    func checkTokens(_ tokens: UnsafeBufferPointer<Int32>, batch: Int, length: Int) throws {
        guard batch >= 1, length >= 1 else { throw ModelError("tokens: batch \(batch) and length \(length) must be positive") }
        guard tokens.count == batch * length else {
            throw ModelError("tokens: \(tokens.count) ids do not form shape [\(batch), \(length)]")
        }
        guard length <= config.contextLength else {
            throw ModelError("tokens: sequence length \(length) exceeds context_length \(config.contextLength)")
        }
        if let bad = config.firstInvalidToken(in: tokens) {
            throw ModelError("tokens: id \(bad.id) at [\(bad.index / length), \(bad.index % length)] is outside 0..<\(config.vocabSize)")
        }
    }

    /// Runs the forward pass into `saved` (which fixes batch, length and whether every layer's
    /// intermediates are kept). The logits go to `logits` when given, else to `saved.logits`.
    /// Tokens must already be validated.
    func forwardPass(tokens: UnsafeBufferPointer<Int32>, into saved: ForwardActivations, logits: UnsafeMutableBufferPointer<Float>? = nil) {
        let (n, c) = (saved.rows, config.dModel)
        Embedding.forward(ids: tokens, table: UnsafeBufferPointer(weights.embedding), y: saved.residual(0), vocabSize: config.vocabSize, dim: c)
        let dims = attentionDims(batch: saved.batch, length: saved.length)
        saved.positions.withUnsafeBufferPointer { positions in
            for (index, layer) in weights.layers.enumerated() {
                TransformerBlock.forward(weights: layer, buffers: saved.layer(index), dims: dims, positions: positions, rope: rope, config: config)
            }
        }
        RMSNorm.forward(x: UnsafeBufferPointer(saved.residual(config.numLayers)), weight: UnsafeBufferPointer(weights.finalNorm),
                        y: saved.normFinal.storage, rstd: saved.rstdFinal.storage, rows: n, dim: c, epsilon: config.normEps)
        Linear.forward(x: UnsafeBufferPointer(saved.normFinal.storage), weight: UnsafeBufferPointer(weights.head),
                       y: logits ?? saved.logits.storage, rows: n, inFeatures: c, outFeatures: config.vocabSize)
    }
}
