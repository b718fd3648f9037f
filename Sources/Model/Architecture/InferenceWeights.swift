import Kernels

/// The matrices the forward multiplies with: the Float32 views of ``ModelTensors``, or, for a
/// model loaded with its blocks kept, ``/Kernels/QuantizedMatrix``es in their place (a fused q/k/v or
/// gate/up group whose parts are stored apart is a ``/Kernels/StackedWeights``). The embedding lookup
/// decodes one row of a quantized table; a tied head is the same matrix as the embedding.
struct InferenceWeights {
    let layers: [BlockWeights]
    let head: any LinearWeight
    private let embedding: MatrixView
    private let quantizedEmbedding: QuantizedMatrix?

    /// The Float32 views of `tensors`, except where `quantized` names a tensor (our names); a
    /// tied head is the embedding's matrix, which the loader passes under both names.
    init(_ tensors: ModelTensors, config: ModelConfig, quantized: [String: QuantizedMatrix]) {
        func group(_ names: [String], dense: MatrixView) -> any LinearWeight {
            guard names.contains(where: { quantized[$0] != nil }) else { return dense }
            var start = 0
            let parts: [any LinearWeight] = names.map { name in
                let part: any LinearWeight
                if let matrix = quantized[name] {
                    part = matrix
                } else {
                    let rows = config.rows(of: name)
                    part = dense.rows(start..<(start + rows))
                }
                start += part.outFeatures
                return part
            }
            return parts.count == 1 ? parts[0] : StackedWeights(parts)
        }
        layers = tensors.layers.enumerated().map { index, block in
            let prefix = "layers.\(index)."
            return BlockWeights(
                qkv: group(["attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight"].map { prefix + $0 }, dense: block.qkv),
                output: group([prefix + "attn.output_proj.weight"], dense: block.output),
                gateUp: group([prefix + "ffn.w1.weight", prefix + "ffn.w3.weight"], dense: block.gateUp),
                down: group([prefix + "ffn.w2.weight"], dense: block.down),
                ln1: block.ln1, ln2: block.ln2, extras: block.extras)
        }
        // A tied head is the embedding's matrix, quantized or not.
        head = quantized[config.architecture.tiedEmbeddings ? "token_embeddings.weight" : "lm_head.weight"] ?? tensors.head
        embedding = tensors.embedding
        quantizedEmbedding = quantized["token_embeddings.weight"]
    }

    private init(layers: [BlockWeights], head: any LinearWeight, embedding: MatrixView, quantizedEmbedding: QuantizedMatrix?) {
        (self.layers, self.head, self.embedding, self.quantizedEmbedding) = (layers, head, embedding, quantizedEmbedding)
    }

    /// The same matrices multiplied batch-invariantly (``/Kernels/BatchInvariantWeight``): what a
    /// batched decode step multiplies with, so that each stream's rows are computed alone.
    func batchInvariant() -> InferenceWeights {
        InferenceWeights(
            layers: layers.map {
                BlockWeights(qkv: BatchInvariantWeight($0.qkv), output: BatchInvariantWeight($0.output),
                             gateUp: BatchInvariantWeight($0.gateUp), down: BatchInvariantWeight($0.down), ln1: $0.ln1, ln2: $0.ln2,
                             extras: $0.extras)
            },
            head: BatchInvariantWeight(head), embedding: embedding, quantizedEmbedding: quantizedEmbedding)
    }

    /// The same with each layer's weights replaced by `transform(layer, weights)` (adapters
    /// wrapped around them); the embedding and the head stay.
    func adapted(_ transform: (Int, BlockWeights) -> BlockWeights) -> InferenceWeights {
        InferenceWeights(layers: layers.enumerated().map { transform($0, $1) }, head: head, embedding: embedding,
                         quantizedEmbedding: quantizedEmbedding)
    }

    /// The rows of `ids` into `y`: [ids.count, C].
    func embed(_ ids: UnsafeBufferPointer<Int32>, into y: MatrixView) {
        guard let table = quantizedEmbedding else { return Embedding.forward(ids: ids, table: embedding, y: y) }
        for (row, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < table.rows, "embedding: id \(id) at position \(row) is outside 0..<\(table.rows)")
            table.decodeRow(Int(id), into: y.pointer(row: row))
        }
    }
}

extension ModelConfig {
    /// Rows of a projection matrix by its name's last part (q, k, v, w1, w3, …).
    func rows(of name: String) -> Int {
        if name.hasSuffix("q_proj.weight") { return attentionWidth }
        if name.hasSuffix("output_proj.weight") || name.hasSuffix("w2.weight") { return dModel }
        if name.hasSuffix("k_proj.weight") || name.hasSuffix("v_proj.weight") { return kvDim }
        return dFF
    }
}
