import Kernels

/// One Transformer block's tensors: its parameters, or their gradients, or an optimizer moment
/// (inside a buffer laid out by ``ParameterLayout``, or anywhere a caller keeps them).
public struct BlockTensors {
    /// Fused q, k, v projections: [(H + 2·Hkv)·d, C].
    public let qkv: MatrixView
    /// [C, C]
    public let output: MatrixView
    /// Fused w1 over w3: [2·d_ff, C].
    public let gateUp: MatrixView
    /// w2: [C, d_ff]
    public let down: MatrixView
    /// [C]
    public let ln1: UnsafeMutableBufferPointer<Float>
    /// [C]
    public let ln2: UnsafeMutableBufferPointer<Float>

    public init(qkv: MatrixView, output: MatrixView, gateUp: MatrixView, down: MatrixView,
                ln1: UnsafeMutableBufferPointer<Float>, ln2: UnsafeMutableBufferPointer<Float>) {
        (self.qkv, self.output, self.gateUp, self.down, self.ln1, self.ln2) = (qkv, output, gateUp, down, ln1, ln2)
    }
}

/// What a block's forward multiplies with: the matrices in any ``/Kernels/LinearWeight`` form (Float32
/// views of a ``BlockTensors``, or block-quantized matrices kept as a GGUF file stores them).
public struct BlockWeights {
    /// [(H + 2·Hkv)·d, C]
    public let qkv: any LinearWeight
    /// [C, C]
    public let output: any LinearWeight
    /// [2·d_ff, C]
    public let gateUp: any LinearWeight
    /// [C, d_ff]
    public let down: any LinearWeight
    /// [C]
    public let ln1: UnsafeMutableBufferPointer<Float>
    /// [C]
    public let ln2: UnsafeMutableBufferPointer<Float>

    public init(qkv: any LinearWeight, output: any LinearWeight, gateUp: any LinearWeight, down: any LinearWeight,
                ln1: UnsafeMutableBufferPointer<Float>, ln2: UnsafeMutableBufferPointer<Float>) {
        (self.qkv, self.output, self.gateUp, self.down, self.ln1, self.ln2) = (qkv, output, gateUp, down, ln1, ln2)
    }

    /// The Float32 views of `tensors`.
    public init(_ tensors: BlockTensors) {
        self.init(qkv: tensors.qkv, output: tensors.output, gateUp: tensors.gateUp, down: tensors.down, ln1: tensors.ln1, ln2: tensors.ln2)
    }
}

/// The model's tensors as views into one flat buffer laid out by ``ParameterLayout``, built the
/// same way over the parameters and over the gradients (as llm.c points one struct at both).
///
/// The views point into `buffer`'s memory: they are valid as long as `buffer` lives, which the
/// owner of a `ModelTensors` guarantees by keeping both (the model, a training session).
struct ModelTensors {
    let buffer: TensorBuffer
    /// [vocab, C]
    let embedding: MatrixView
    let layers: [BlockTensors]
    /// [C]
    let finalNorm: UnsafeMutableBufferPointer<Float>
    /// [vocab, C]
    let head: MatrixView

    init(layout: ParameterLayout, config: ModelConfig, buffer: TensorBuffer) {
        precondition(buffer.count == layout.totalCount, "ModelTensors: buffer of \(buffer.count) values, layout needs \(layout.totalCount)")
        self.buffer = buffer
        func vector(_ name: String) -> UnsafeMutableBufferPointer<Float> {
            let entry = layout.required(name)
            return buffer.slice(entry.offset, entry.count)
        }
        /// The matrix starting at tensor `name`, `rows` tall (more than its own rows for a fused group).
        func matrix(_ name: String, rows: Int? = nil) -> MatrixView {
            let entry = layout.required(name)
            let columns = entry.shape[1]
            return buffer.matrix(at: entry.offset, rows: rows ?? entry.shape[0], columns: columns)
        }
        embedding = matrix("token_embeddings.weight")
        layers = (0..<config.numLayers).map { layer in
            let prefix = "layers.\(layer)."
            // The layout keeps q, k, v and then w1, w3 back to back, so each group is one view.
            return BlockTensors(
                qkv: matrix(prefix + "attn.q_proj.weight", rows: config.qkvWidth),
                output: matrix(prefix + "attn.output_proj.weight"),
                gateUp: matrix(prefix + "ffn.w1.weight", rows: 2 * config.dFF),
                down: matrix(prefix + "ffn.w2.weight"),
                ln1: vector(prefix + "ln1.weight"), ln2: vector(prefix + "ln2.weight"))
        }
        finalNorm = vector("ln_final.weight")
        head = matrix("lm_head.weight")
    }
}
