/// Where every weight lives in the one flat buffer that holds a model's parameters (and, with
/// the same layout, its gradients and optimiser moments). Names and shapes are the CS336
/// state-dict ones, weights `[out, in]`.
///
/// Within a layer the order is q, k, v, output projection, w1, w3, w2, ln1, ln2: q, k and v
/// stacked are the fused QKV weight `[(H + 2·Hkv)·d, C]`, and w1 over w3 the fused gate/up
/// weight `[2·d_ff, C]`, so the fused GEMMs read the parameters in place, with no packed copy.
public struct ParameterLayout: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let entries: [Entry]
    public let totalCount: Int
    private let index: [String: Int]

    public init(config: ModelConfig) {
        let (c, f, v, kv) = (config.dModel, config.dFF, config.vocabSize, config.kvDim)
        var shapes: [(String, [Int])] = [("token_embeddings.weight", [v, c])]
        for layer in 0..<config.numLayers {
            let prefix = "layers.\(layer)."
            shapes += [
                (prefix + "attn.q_proj.weight", [c, c]), (prefix + "attn.k_proj.weight", [kv, c]),
                (prefix + "attn.v_proj.weight", [kv, c]), (prefix + "attn.output_proj.weight", [c, c]),
                (prefix + "ffn.w1.weight", [f, c]), (prefix + "ffn.w3.weight", [f, c]), (prefix + "ffn.w2.weight", [c, f]),
                (prefix + "ln1.weight", [c]), (prefix + "ln2.weight", [c]),
            ]
        }
        shapes += [("ln_final.weight", [c]), ("lm_head.weight", [v, c])]
        var offset = 0
        var entries: [Entry] = []
        for (name, shape) in shapes {
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        self.entries = entries
        totalCount = offset
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    /// The entry called `name`, or nil when the model has no such tensor.
    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The entry called `name`; the caller knows it exists.
    func required(_ name: String) -> Entry {
        guard let entry = entry(name) else { preconditionFailure("ParameterLayout: no tensor '\(name)'") }
        return entry
    }
}
