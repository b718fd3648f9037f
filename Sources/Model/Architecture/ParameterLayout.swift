/// Where every weight lives in the one flat buffer that holds a model's parameters, and, with
/// the same layout, its gradients and both AdamW moments: zeroing, the global norm, clipping and
/// the optimizer are flat loops over one range, and ``ModelTensors`` gives the same named views
/// over any of these buffers. Names and shapes are the CS336 state-dict ones, weights `[out, in]`.
///
/// Within a layer the order is q, k, v, output projection, w1, w3, w2, ln1, ln2, then what the
/// ``Architecture`` adds: the q, k, v biases (one fused `[qkvWidth]` vector), the QK-norm gains
/// `[d]` and the post-norm gains `[C]`. q, k and v stacked are the fused QKV weight
/// `[(H + 2·Hkv)·d, C]`, and w1 over w3 the fused gate/up weight `[2·d_ff, C]`, so the fused
/// GEMMs read the parameters in place, with no packed copy. A tied model has no `lm_head.weight`:
/// its head is the embedding.
public struct ParameterLayout: Sendable {
    /// What a tensor is, which decides its initialisation and whether weight decay applies.
    public enum Role: Sendable, Equatable {
        /// The token embedding table `[vocab, C]`.
        case embedding
        /// A linear layer's weight `[out, in]`.
        case matrix
        /// An RMSNorm gain `[C]` (or `[d]` for a QK-norm).
        case gain
        /// A linear layer's bias `[out]`: starts at 0, never decayed.
        case bias
    }

    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public let role: Role
        public var count: Int { shape.reduce(1, *) }
        /// The elements of this tensor in a buffer with this layout.
        public var range: Range<Int> { offset..<(offset + count) }
    }

    public let entries: [Entry]
    public let totalCount: Int
    private let index: [String: Int]

    /// The layout of a ``TransformerLM`` with `config`.
    public init(config: ModelConfig) {
        let (c, f, v, kv, q) = (config.dModel, config.dFF, config.vocabSize, config.kvDim, config.attentionWidth)
        let (architecture, d) = (config.architecture, config.headDim)
        var tensors: [(name: String, shape: [Int], role: Role)] = [("token_embeddings.weight", [v, c], .embedding)]
        for layer in 0..<config.numLayers {
            let prefix = "layers.\(layer)."
            tensors += [
                (prefix + "attn.q_proj.weight", [q, c], .matrix), (prefix + "attn.k_proj.weight", [kv, c], .matrix),
                (prefix + "attn.v_proj.weight", [kv, c], .matrix), (prefix + "attn.output_proj.weight", [c, q], .matrix),
                (prefix + "ffn.w1.weight", [f, c], .matrix), (prefix + "ffn.w3.weight", [f, c], .matrix),
                (prefix + "ffn.w2.weight", [c, f], .matrix),
                (prefix + "ln1.weight", [c], .gain), (prefix + "ln2.weight", [c], .gain),
            ]
            if architecture.qkvBias {
                tensors += [(prefix + "attn.q_proj.bias", [q], .bias), (prefix + "attn.k_proj.bias", [kv], .bias),
                            (prefix + "attn.v_proj.bias", [kv], .bias)]
            }
            if architecture.qkNorm {
                tensors += [(prefix + "attn.q_norm.weight", [d], .gain), (prefix + "attn.k_norm.weight", [d], .gain)]
            }
            if architecture.postNorms {
                tensors += [(prefix + "post_attn_norm.weight", [c], .gain), (prefix + "post_ffn_norm.weight", [c], .gain)]
            }
        }
        tensors += [("ln_final.weight", [c], .gain)]
        if !architecture.tiedEmbeddings { tensors += [("lm_head.weight", [v, c], .matrix)] }
        try! self.init(tensors: tensors)  // the names above are distinct and the sizes positive
        // The fused views read q|k|v (weights and biases) and w1|w3 as one block each: they must stay adjacent.
        for layer in 0..<config.numLayers {
            let prefix = "layers.\(layer)."
            var groups = [["attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight"], ["ffn.w1.weight", "ffn.w3.weight"]]
            if architecture.qkvBias { groups.append(["attn.q_proj.bias", "attn.k_proj.bias", "attn.v_proj.bias"]) }
            for group in groups {
                for (first, second) in zip(group, group.dropFirst()) {
                    precondition(required(prefix + first).range.upperBound == required(prefix + second).offset,
                                 "ParameterLayout: \(prefix + second) must follow \(prefix + first) for the fused view")
                }
            }
        }
    }

    /// Any named tensors, laid out one after another in the order given: the layout an ``AdamW``,
    /// a gradient buffer or ``Checkpoint/write(_:layout:metadata:to:)`` can work over for a model
    /// that is not a ``TransformerLM``. Each tensor's role decides whether weight decay applies
    /// to it (not to gains, unless ``AdamWOptions/decayGains``). Throws on a repeated name or a
    /// shape with a negative dimension.
    public init(tensors: [(name: String, shape: [Int], role: Role)]) throws {
        var offset = 0
        var entries: [Entry] = []
        var seen = Set<String>()
        for (name, shape, role) in tensors {
            guard seen.insert(name).inserted else { throw ModelError("parameter layout: tensor '\(name)' appears twice") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw ModelError("parameter layout: tensor '\(name)' has shape \(shape)") }
            entries.append(Entry(name: name, shape: shape, offset: offset, role: role))
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
