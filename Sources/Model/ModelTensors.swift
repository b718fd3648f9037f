import Kernels

/// One Transformer block's tensors inside a buffer laid out by ``ParameterLayout``: its
/// parameters, or their gradients, or an optimizer moment.
struct LayerTensors {
    /// Fused q, k, v projections: [(H + 2·Hkv)·d, C].
    let qkv: UnsafeMutableBufferPointer<Float>
    /// [C, C]
    let output: UnsafeMutableBufferPointer<Float>
    /// Fused w1 over w3: [2·d_ff, C].
    let gateUp: UnsafeMutableBufferPointer<Float>
    /// w2: [C, d_ff]
    let down: UnsafeMutableBufferPointer<Float>
    /// [C]
    let ln1: UnsafeMutableBufferPointer<Float>
    /// [C]
    let ln2: UnsafeMutableBufferPointer<Float>
}

/// The model's tensors as views into one flat buffer laid out by ``ParameterLayout``, built the
/// same way over the parameters and over the gradients (as llm.c points one struct at both).
///
/// The views point into `buffer`'s memory: they are valid as long as `buffer` lives, which the
/// owner of a `ModelTensors` guarantees by keeping both (the model, a training session).
struct ModelTensors {
    let buffer: TensorBuffer
    /// [vocab, C]
    let embedding: UnsafeMutableBufferPointer<Float>
    let layers: [LayerTensors]
    /// [C]
    let finalNorm: UnsafeMutableBufferPointer<Float>
    /// [vocab, C]
    let head: UnsafeMutableBufferPointer<Float>

    init(layout: ParameterLayout, config: ModelConfig, buffer: TensorBuffer) {
        precondition(buffer.count == layout.totalCount, "ModelTensors: buffer of \(buffer.count) values, layout needs \(layout.totalCount)")
        self.buffer = buffer
        func view(_ name: String, count: Int? = nil) -> UnsafeMutableBufferPointer<Float> {
            let entry = layout.required(name)
            return buffer.slice(entry.offset, count ?? entry.count)
        }
        embedding = view("token_embeddings.weight")
        layers = (0..<config.numLayers).map { layer in
            let prefix = "layers.\(layer)."
            // The layout keeps q, k, v and then w1, w3 back to back, so each group is one view.
            return LayerTensors(
                qkv: view(prefix + "attn.q_proj.weight", count: config.qkvWidth * config.dModel),
                output: view(prefix + "attn.output_proj.weight"),
                gateUp: view(prefix + "ffn.w1.weight", count: 2 * config.dFF * config.dModel),
                down: view(prefix + "ffn.w2.weight"),
                ln1: view(prefix + "ln1.weight"), ln2: view(prefix + "ln2.weight"))
        }
        finalNorm = view("ln_final.weight")
        head = view("lm_head.weight")
    }
}
