import Kernels

/// Low-rank adapters for a model (LoRA): for each adapted projection `W` [out, in] of every
/// layer, `A` [rank, in] and `B` [out, rank], so that the layer computes with
/// `W + (alpha / rank) · B · A` while `W` stays frozen, in whatever form the model holds it
/// (Float32, or ggml blocks: QLoRA). Only `A` and `B` train.
///
/// All adapters live in one flat buffer laid out by ``layout`` (names
/// `layers.N.attn.q_proj.lora_A` …, the adapted weight's name with `lora_A` / `lora_B` for
/// `weight`), so AdamW, clipping and checkpoints work over them as over a model's parameters.
/// Within a fused weight (q | k | v, gate | up) the parts' A matrices are adjacent: one GEMM
/// multiplies all of them (``/Kernels/LoRAWeight``).
public final class LoRAAdapter {
    /// What an adapter is: its rank, scale and the projections it adapts.
    public struct Settings: Codable, Sendable, Equatable {
        public var rank: Int
        public var alpha: Double
        /// The projections adapted in every layer, in ``LoRATarget`` order.
        public var targets: [LoRATarget]
        /// Dropout on the adapters' input in training (PEFT's `lora_dropout`).
        public var dropout: Double
        /// Scale `alpha / √rank` instead of `alpha / rank` (PEFT's `use_rslora`).
        public var rankStabilized: Bool

        public init(rank: Int, alpha: Double? = nil, targets: [LoRATarget] = LoRATarget.allCases, dropout: Double = 0,
                    rankStabilized: Bool = false) {
            self.rank = rank
            self.alpha = alpha ?? 2 * Double(rank)
            self.targets = Array(Set(targets)).sorted()
            self.dropout = dropout
            self.rankStabilized = rankStabilized
        }

        /// The factor on `B · A`.
        public var scale: Float { Float(rankStabilized ? alpha / Double(rank).squareRoot() : alpha / Double(rank)) }

        enum CodingKeys: String, CodingKey {
            case rank, alpha, targets, dropout
            case rankStabilized = "rank_stabilized"
        }

        /// Stops, naming the setting, unless every adapted projection of `config` can take it.
        public func validate(for config: ModelConfig) throws {
            guard !targets.isEmpty else { throw ModelError("--lora-targets: no projection to adapt; name some of \(LoRATarget.allCases.map(\.rawValue).joined(separator: ","))") }
            guard rank >= 1 else { throw ModelError("--lora-rank must be at least 1, got \(rank)") }
            for target in targets {
                let (rows, inFeatures) = target.place(in: config)
                guard rank <= min(rows.count, inFeatures) else {
                    throw ModelError("--lora-rank \(rank) is larger than the \(target.rawValue) projection [\(rows.count), \(inFeatures)] (at most \(min(rows.count, inFeatures)))")
                }
            }
            guard alpha.isFinite, alpha > 0 else { throw ModelError("--lora-alpha must be a positive number, got \(alpha)") }
            guard dropout >= 0, dropout < 1 else { throw ModelError("--lora-dropout must be in [0, 1), got \(dropout)") }
        }
    }

    public let settings: Settings
    /// The model shape the adapter was made for.
    public let config: ModelConfig
    public let layout: ParameterLayout
    /// Every A and B, at the offsets of ``layout``.
    public let parameters: TensorBuffer

    /// Fresh adapters as PEFT starts them: A uniform in ±1/√in (Kaiming, a = √5), B zero, so the
    /// adapted model starts as the base.
    public convenience init(settings: Settings, config: ModelConfig, seed: UInt64) throws {
        let layout = try Self.layout(settings: settings, config: config)
        let parameters = TensorBuffer(count: layout.totalCount)
        var generator = SeededGenerator(seed: seed)
        for entry in layout.entries where entry.name.hasSuffix(".lora_A") {
            let bound = 1 / Float(entry.shape[1]).squareRoot()
            for index in entry.range { parameters.storage[index] = Float.random(in: -bound...bound, using: &generator) }
        }
        try self.init(settings: settings, config: config, parameters: parameters)
    }

    /// Adapters over existing values laid out by ``layout(settings:config:)``.
    public init(settings: Settings, config: ModelConfig, parameters: TensorBuffer) throws {
        try settings.validate(for: config)
        layout = try Self.layout(settings: settings, config: config)
        guard parameters.count == layout.totalCount else {
            throw ModelError("LoRA adapter: \(parameters.count) values, rank \(settings.rank) on \(settings.targets.map(\.rawValue)) needs \(layout.totalCount)")
        }
        (self.settings, self.config, self.parameters) = (settings, config, parameters)
    }

    /// The tensors of adapters with `settings` on a model with `config`: per layer and fused
    /// weight, the parts' A matrices, then their B matrices.
    public static func layout(settings: Settings, config: ModelConfig) throws -> ParameterLayout {
        var tensors: [(name: String, shape: [Int], role: ParameterLayout.Role)] = []
        for layer in 0..<config.numLayers {
            for group in LoRATarget.Group.allCases {
                let parts = settings.targets.filter { $0.group == group }
                tensors += parts.map { (name(of: $0, layer: layer, matrix: "A"), [settings.rank, $0.place(in: config).inFeatures], .matrix) }
                tensors += parts.map { (name(of: $0, layer: layer, matrix: "B"), [$0.place(in: config).rows.count, settings.rank], .matrix) }
            }
        }
        return try ParameterLayout(tensors: tensors)
    }

    /// `layers.N.attn.q_proj.lora_A`: the adapted weight's name with `lora_A` / `lora_B` for `weight`.
    static func name(of target: LoRATarget, layer: Int, matrix: String) -> String {
        String(target.weightName(layer: layer).dropLast("weight".count)) + "lora_" + matrix
    }

    /// Named views of `buffer` (laid out like ``parameters``).
    func matrix(_ name: String, in buffer: TensorBuffer) -> MatrixView {
        let entry = layout.required(name)
        return buffer.matrix(at: entry.offset, rows: entry.shape[0], columns: entry.shape[1])
    }

    /// `base` with every adapted weight wrapped in a ``/Kernels/LoRAWeight``; with `gradients`
    /// (a buffer laid out like ``parameters``), the adapters' gradients accumulate there.
    func weights(over base: InferenceWeights, gradients: TensorBuffer? = nil) -> InferenceWeights {
        base.adapted { layer, block in
            func adapt(_ weight: any LinearWeight, _ group: LoRATarget.Group) -> any LinearWeight {
                let parts = settings.targets.filter { $0.group == group }
                guard let first = parts.first else { return weight }
                let firstA = layout.required(Self.name(of: first, layer: layer, matrix: "A"))
                let stackedRows = parts.count * settings.rank, columns = firstA.shape[1]
                let ups = parts.map { Self.name(of: $0, layer: layer, matrix: "B") }
                return LoRAWeight(
                    base: weight, down: parameters.matrix(at: firstA.offset, rows: stackedRows, columns: columns),
                    parts: zip(parts, ups).map { LoRAWeight.Part(rows: $0.place(in: config).rows, up: matrix($1, in: parameters)) },
                    scale: settings.scale,
                    gradients: gradients.map { buffer in
                        LoRAWeight.Gradients(down: buffer.matrix(at: firstA.offset, rows: stackedRows, columns: columns),
                                             ups: ups.map { matrix($0, in: buffer) })
                    },
                    dropout: LoRAWeight.Dropout(probability: Float(settings.dropout), stream: UInt64(layer * 4 + LoRATarget.Group.allCases.firstIndex(of: group)!)))
            }
            return BlockWeights(qkv: adapt(block.qkv, .qkv), output: adapt(block.output, .output), gateUp: adapt(block.gateUp, .gateUp),
                                down: adapt(block.down, .down), ln1: block.ln1, ln2: block.ln2, extras: block.extras)
        }
    }

    /// Stops unless the adapter was made for a model of `config`'s shape, naming what differs.
    public func requireFits(_ model: ModelConfig, source: String) throws {
        let mine = (config.numLayers, config.dModel, config.attentionWidth, config.kvDim, config.dFF)
        let theirs = (model.numLayers, model.dModel, model.attentionWidth, model.kvDim, model.dFF)
        guard mine == theirs else {
            throw ModelError("\(source): the adapter was made for \(config.numLayers) layers, d_model \(config.dModel), q width \(config.attentionWidth), kv width \(config.kvDim), d_ff \(config.dFF); the model has \(model.numLayers), \(model.dModel), \(model.attentionWidth), \(model.kvDim), \(model.dFF)")
        }
    }
}

extension LoRAAdapter {
    /// Folds the adapter into `model`'s Float32 weights, `W += s · B · A` for every adapted
    /// projection: the model then computes alone what it computed with the adapter applied
    /// (`lm merge`). The model must be dense and have no adapter applied.
    public func merge(into model: TransformerLM) throws {
        try requireFits(model.config, source: "merging the adapter")
        try model.requireDense(for: "merging an adapter")
        guard model.adapter == nil else { throw ModelError("merging the adapter: the model has an adapter applied; merge into the base") }
        for layer in 0..<config.numLayers {
            for target in settings.targets {
                let weight = model.layout.required(target.weightName(layer: layer))
                let w = model.parameters.matrix(at: weight.offset, rows: weight.shape[0], columns: weight.shape[1])
                let a = matrix(Self.name(of: target, layer: layer, matrix: "A"), in: parameters)
                let b = matrix(Self.name(of: target, layer: layer, matrix: "B"), in: parameters)
                sgemm(transposeA: false, transposeB: false, m: w.rows, n: w.columns, k: settings.rank, alpha: settings.scale,
                      a: b.base, lda: b.rowStride, b: a.base, ldb: a.rowStride, beta: 1, c: w.base, ldc: w.rowStride)
            }
        }
    }
}
