import Kernels

/// Read-only views of one Transformer block's weights inside the flat parameter buffer.
struct LayerWeights {
    /// Fused q, k, v projections: [(H + 2·Hkv)·d, C].
    let qkv: UnsafeBufferPointer<Float>
    /// [C, C]
    let output: UnsafeBufferPointer<Float>
    /// Fused w1 over w3: [2·d_ff, C].
    let gateUp: UnsafeBufferPointer<Float>
    /// w2: [C, d_ff]
    let down: UnsafeBufferPointer<Float>
    /// [C]
    let ln1: UnsafeBufferPointer<Float>
    /// [C]
    let ln2: UnsafeBufferPointer<Float>

    init(layer: Int, layout: ParameterLayout, parameters: TensorBuffer, config: ModelConfig) {
        func view(_ suffix: String, count: Int? = nil) -> UnsafeBufferPointer<Float> {
            let entry = layout.required("layers.\(layer).\(suffix)")
            return parameters.view(entry.offset, count ?? entry.count)
        }
        let qkvRows = (config.numHeads + 2 * config.numKVHeads) * config.headDim
        // The layout stores q, k, v and then w1, w3 back to back, so each pair is one view.
        qkv = view("attn.q_proj.weight", count: qkvRows * config.dModel)
        output = view("attn.output_proj.weight")
        gateUp = view("ffn.w1.weight", count: 2 * config.dFF * config.dModel)
        down = view("ffn.w2.weight")
        ln1 = view("ln1.weight")
        ln2 = view("ln2.weight")
    }
}
