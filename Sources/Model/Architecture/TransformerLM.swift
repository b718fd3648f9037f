import Kernels
import TensorIO

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
    /// The rotary tables of the layers: one, or a global and a local one (Gemma 3's bases).
    let ropeTables: [RoPETable]
    /// Index into `ropeTables` of each layer's table.
    let ropeOfLayer: [Int]
    /// Each layer's norm epsilon, gate, window and attention scale.
    let layerSettings: [BlockSettings]
    /// Named views into `parameters`.
    let weights: ModelTensors
    /// What the forward multiplies with: `weights`' views, or block-quantized matrices in their
    /// place (``init(config:parameters:quantized:keeping:)``), with the ``adapter``'s
    /// low-rank products around them when one is applied.
    private(set) var inference: InferenceWeights
    /// The same without adapters.
    let baseInference: InferenceWeights
    /// LoRA adapters applied, unmerged, by every forward (``apply(adapter:)``).
    public private(set) var adapter: LoRAAdapter?
    /// Tensors kept in ggml blocks, by our name: their part of `parameters` is never written
    /// (zero pages that take no memory) and the model cannot be trained or saved.
    public let quantizedTensors: [String: QuantizedMatrix]
    /// What the quantized matrices point into (a memory-mapped file), kept alive with the model.
    private let storageOwner: AnyObject?
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
    public convenience init(config: ModelConfig, parameters: TensorBuffer) throws {
        try self.init(config: config, parameters: parameters, quantized: [:], keeping: nil)
    }

    /// A model whose tensors named in `quantized` are block-quantized matrices (their entries
    /// in `parameters` unused), the rest in `parameters`; `owner` keeps their blocks' memory alive.
    public init(config: ModelConfig, parameters: TensorBuffer, quantized: [String: QuantizedMatrix], keeping owner: AnyObject?) throws {
        try config.validate()
        self.config = config
        let layout = ParameterLayout(config: config)
        self.layout = layout
        guard parameters.count == layout.totalCount else {
            throw ModelError("parameters: \(parameters.count) values, the configuration needs \(layout.totalCount)")
        }
        for (name, matrix) in quantized {
            guard let entry = layout.entry(name), entry.shape == [matrix.rows, matrix.columns] else {
                throw ModelError("quantized tensor '\(name)' [\(matrix.rows), \(matrix.columns)] has no such place in the model")
            }
        }
        self.parameters = parameters
        let architecture = config.architecture
        var globalFactors = config.ropeFrequencyFactors
        if let scale = architecture.globalRopeScale {
            globalFactors = (globalFactors ?? Array(repeating: 1, count: config.headDim / 2)).map { $0 * scale }
        }
        var tables = [RoPETable(headDim: config.headDim, maxPositions: config.contextLength, theta: config.ropeTheta,
                                frequencyFactors: globalFactors, style: architecture.ropeStyle)]
        let slides = (0..<config.numLayers).map { architecture.slides(layer: $0) }
        if slides.contains(true), let local = architecture.localRopeTheta, local != config.ropeTheta || globalFactors != nil {
            tables.append(RoPETable(headDim: config.headDim, maxPositions: config.contextLength, theta: local, style: architecture.ropeStyle))
        }
        ropeTables = tables
        ropeOfLayer = slides.map { $0 && tables.count > 1 ? 1 : 0 }
        layerSettings = (0..<config.numLayers).map { BlockSettings(config: config, layer: $0) }
        weights = ModelTensors(layout: layout, config: config, buffer: parameters)
        baseInference = InferenceWeights(weights, config: config, quantized: quantized)
        inference = baseInference
        quantizedTensors = quantized
        storageOwner = owner
    }

    /// Stops, naming the file, when the mapped file the quantized matrices read from shrank
    /// under the model (replaced in place while it runs): the logits just computed read zeros
    /// for its lost pages. Every inference step calls it after its forward.
    public func requireStorageIntact() throws {
        guard let file = storageOwner as? GGUFFile else { return }
        do { try file.requireIntact() } catch let error as TensorFileError {
            throw ModelError("\(error.description); reload the model")
        }
    }

    /// Whether some weights are kept block-quantized (then the model runs, but neither trains
    /// nor saves: its Float32 parameters are incomplete).
    public var isQuantized: Bool { !quantizedTensors.isEmpty }

    /// Stops unless every weight is Float32 in `parameters`, naming what needs it.
    public func requireDense(for purpose: String) throws {
        guard let name = quantizedTensors.keys.sorted().first else { return }
        throw ModelError("\(purpose) needs the weights in Float32, but '\(name)' (and \(quantizedTensors.count - 1) more) are kept quantized; load the model dequantized")
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
        try SizeLimits.requireMemory(4 * Double(batch) * Double(length) * Double(config.vocabSize), for: "the logits of [\(batch), \(length)] tokens")
        let saved = try activations(batch: batch, length: length)
        return [Float](unsafeUninitializedCapacity: batch * length * config.vocabSize) { logits, initialized in
            tokens.withUnsafeBufferPointer {
                forward(tokens: $0, batch: batch, into: saved,
                        logitRows: 0..<(batch * length), logits: MatrixView(logits, rows: batch * length, columns: config.vocabSize))
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
        forward(tokens: tokens, batch: batch, into: try activations(batch: batch, length: length),
                logitRows: 0..<(batch * length), logits: MatrixView(logits, rows: batch * length, columns: config.vocabSize))
    }

    /// The forward pass, the one implementation for every mode: tokens: [batch, length] (already
    /// validated) → the logits of rows `logitRows` of the `B·T` rows, `[logitRows.count, vocab]`,
    /// into `logits` (default: `saved`'s own, in training).
    ///
    /// `saved` decides what is kept: every layer's intermediates (training, what
    /// ``backward(tokens:batch:saved:workspace:gradients:weights:)`` reads) or one layer's worth reused
    /// (inference). With `cache` (batch 1) the rows are positions `cache.length…`: their keys and
    /// values are appended to the cache, attention reads every cached position, and the cache
    /// advances. With `streams` (a batched decode step: `batch` = `streams.count`, one token
    /// each) token `i` is the next position of the sequence cached in `streams[i]`, and the
    /// weights multiply batch-invariantly, so each stream's logits are the bits it would get
    /// alone. Only the rows whose logits are wanted go through the final norm and the head.
    ///
    /// `interventions` (activation patching) reach into each block's branches and the stream
    /// after each block. `used` replaces the weights multiplied with (a training session's,
    /// whose adapters keep their gradients).
    func forward(tokens: UnsafeBufferPointer<Int32>, batch: Int, into saved: ForwardActivations, cache: KVCache? = nil,
                 streams: [KVCache] = [], logitRows: Range<Int>, logits: MatrixView? = nil, interventions: Interventions? = nil,
                 using used: InferenceWeights? = nil) {
        let (n, length, start) = (tokens.count, tokens.count / batch, cache?.length ?? 0)
        let weights = used ?? (streams.isEmpty ? inference : streamWeights)
        let dims = AttentionDims(batch: batch, queryLength: length, keyLength: streams.isEmpty ? start + length : saved.keyCapacity,
                                 heads: config.numHeads, kvHeads: config.numKVHeads, headDim: config.headDim)
        let positions = streams.isEmpty ? saved.positions(batch: batch, length: length, start: start) : saved.positions(of: streams)
        let rotary = ropeTables.map { RotaryPositions(table: $0, positions: positions) }
        weights.embed(tokens, into: saved.residual(0, rows: n))
        if let scale = config.architecture.embeddingScale { saved.residual(0, rows: n).scale(by: scale) }
        interventions?.stream?(0, saved.residual(0, rows: n))
        for (index, layer) in weights.layers.enumerated() {
            var (rows, layerDims): (KVCacheRows?, AttentionDims) = (nil, dims)
            if !streams.isEmpty {
                rows = .streams(streams.map { $0.slot(layer: index, adding: 1) })
            } else if let cache {
                // A sliding layer's slot counts positions from its first kept row.
                let slot = cache.slot(layer: index, adding: length)
                (rows, layerDims.keyLength) = (.sequence(slot), slot.start + length)
            }
            let branch = interventions?.branch.map { intervene in { (branch: TransformerBlock.Branch, a: BlockActivations) in intervene(index, branch, a) } }
            TransformerBlock.forward(using: layer, activations: saved.layer(index, dims: layerDims), dims: layerDims,
                                     rope: rotary[ropeOfLayer[index]], settings: layerSettings[index], cache: rows, intervene: branch)
            interventions?.stream?(index + 1, saved.residual(index + 1, rows: n))
        }
        cache?.length += length
        for stream in streams { stream.length += 1 }
        guard !logitRows.isEmpty else { return }
        let (norm, rstd) = saved.finalNorm(rows: logitRows.count)
        readOut(saved.residual(config.numLayers, rows: n).rows(logitRows), norm: norm, rstd: rstd,
                into: logits ?? saved.logits!.matrix(at: 0, rows: logitRows.count, columns: config.vocabSize), head: weights.head)
    }

    /// Residual rows `x` [rows, C] → logits [rows, vocab]: the final norm (its output and 1/rms
    /// into `norm`, `rstd`), the head, the final softcap where the family has one. The end of the
    /// forward, and the logit lens's reading of any layer.
    func readOut(_ x: MatrixView, norm: MatrixView, rstd: UnsafeMutableBufferPointer<Float>, into output: MatrixView,
                 head: any LinearWeight) {
        RMSNorm.forward(x: x, weight: self.weights.finalNorm, y: norm, rstd: rstd, epsilon: config.normEps)
        Linear.forward(x: norm, weight: head, y: output)
        if let cap = config.architecture.finalLogitSoftcap { Softcap.forward(output, cap: cap) }
    }

    /// Changes made to a forward pass as it runs (activation patching): to a block's branch as
    /// it joins the stream (``TransformerBlock/forward(using:activations:dims:rope:settings:cache:intervene:)``),
    /// and to the stream `[B·T, C]` entering layer `entering` (0: the embeddings; `numLayers`:
    /// after the last block).
    struct Interventions {
        var branch: ((_ layer: Int, TransformerBlock.Branch, BlockActivations) -> Void)?
        var stream: ((_ entering: Int, _ stream: MatrixView) -> Void)?
    }

    /// The weights of a batched decode step (``/Kernels/BatchInvariantWeight``), made when first used.
    private lazy var streamWeights = inference.batchInvariant()

    /// Applies LoRA adapters to every forward from now on, without merging them (the base stays
    /// as it is, quantized or not); nil removes them. Throws, naming what differs, when the
    /// adapter was made for a model of another shape.
    public func apply(adapter: LoRAAdapter?) throws {
        if let adapter { try adapter.requireFits(config, source: "adapter") }
        self.adapter = adapter
        inference = adapter.map { $0.weights(over: baseInference) } ?? baseInference
        streamWeights = inference.batchInvariant()
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
        let saved = try activations(batch: batch, length: length), dims = attentionDims(batch: batch, length: length)
        let block = saved.layer(layer, dims: dims)
        _ = block.input.elements.update(fromContentsOf: hidden)
        TransformerBlock.forward(using: inference.layers[layer], activations: block, dims: dims,
                                 rope: RotaryPositions(table: ropeTables[ropeOfLayer[layer]], positions: saved.positions(batch: batch, length: length, start: 0)),
                                 settings: layerSettings[layer])
        _ = output.update(fromContentsOf: block.output.elements)
    }

    func attentionDims(batch: Int, length: Int) -> AttentionDims {
        AttentionDims(batch: batch, queryLength: length, keyLength: length,
                      heads: config.numHeads, kvHeads: config.numKVHeads, headDim: config.headDim)
    }

    /// The inference activation buffers for (batch, length), reused when they repeat; throws,
    /// before allocating, when they would not fit in memory.
    func activations(batch: Int, length: Int) throws -> ForwardActivations {
        let kernel = attention.kernel(config: config, batch: batch, length: length, training: false)
        if kernel == .memoryEfficient, config.architecture.slidingWindow != nil {
            throw ModelError("attention: the memory-efficient kernel has no sliding window (layers of \(config.architecture.family) slide); use the standard kernel")
        }
        if let existing = activations, existing.rowCapacity == batch * length, existing.keyCapacity == length,
           existing.kernel == kernel { return existing }
        activations = nil  // release the old buffers before allocating new ones
        try SizeLimits.requireMemory(ForwardActivations.bytes(config: config, rows: batch * length, keys: length, mode: .inference, kernel: kernel),
                                     for: "a forward pass over [\(batch), \(length)] tokens")
        let fresh = ForwardActivations(config: config, rows: batch * length, keys: length, mode: .inference, kernel: kernel)
        activations = fresh
        return fresh
    }

    /// Validates a [batch, length] token array against the configuration.
    func checkTokens(_ tokens: UnsafeBufferPointer<Int32>, batch: Int, length: Int) throws {
        guard batch >= 1, length >= 1 else { throw ModelError("tokens: batch \(batch) and length \(length) must be positive") }
        guard SizeLimits.product([batch, length]) == tokens.count else {
            throw ModelError("tokens: \(tokens.count) ids do not form shape [\(batch), \(length)]")
        }
        guard length <= config.contextLength else {
            throw ModelError("tokens: sequence length \(length) exceeds context_length \(config.contextLength)")
        }
        if let bad = config.firstInvalidToken(in: tokens) {
            throw ModelError("tokens: id \(bad.id) at [\(bad.index / length), \(bad.index % length)] is outside 0..<\(config.vocabSize)")
        }
    }
}
