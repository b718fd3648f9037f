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
    /// What the ``Architecture`` adds (nil where it does not).
    public let extras: BlockExtras

    public init(qkv: MatrixView, output: MatrixView, gateUp: MatrixView, down: MatrixView,
                ln1: UnsafeMutableBufferPointer<Float>, ln2: UnsafeMutableBufferPointer<Float>, extras: BlockExtras = BlockExtras()) {
        (self.qkv, self.output, self.gateUp, self.down, self.ln1, self.ln2) = (qkv, output, gateUp, down, ln1, ln2)
        self.extras = extras
    }
}

/// The vectors an ``Architecture`` adds to a block beyond Llama's (each nil when the family has
/// none): parameters, or their gradients, in the same views.
public struct BlockExtras {
    /// Fused q | k | v biases [qkvWidth] (Qwen 2).
    public var qkvBias: UnsafeMutableBufferPointer<Float>?
    /// QK-norm gains [d] each.
    public var queryNorm: UnsafeMutableBufferPointer<Float>?
    public var keyNorm: UnsafeMutableBufferPointer<Float>?
    /// Post-norm gains [C]: on the attention output and on the feed-forward output.
    public var postAttentionNorm: UnsafeMutableBufferPointer<Float>?
    public var postFeedForwardNorm: UnsafeMutableBufferPointer<Float>?

    public init(qkvBias: UnsafeMutableBufferPointer<Float>? = nil, queryNorm: UnsafeMutableBufferPointer<Float>? = nil,
                keyNorm: UnsafeMutableBufferPointer<Float>? = nil, postAttentionNorm: UnsafeMutableBufferPointer<Float>? = nil,
                postFeedForwardNorm: UnsafeMutableBufferPointer<Float>? = nil) {
        (self.qkvBias, self.queryNorm, self.keyNorm) = (qkvBias, queryNorm, keyNorm)
        (self.postAttentionNorm, self.postFeedForwardNorm) = (postAttentionNorm, postFeedForwardNorm)
    }
}

/// Where a block's backward puts its parameters' gradients: the views of a ``BlockTensors`` of
/// gradients (full training), or nothing at all (``frozen``: a base under LoRA adapters, whose
/// gradients the adapters keep themselves).
struct BlockGradients {
    let qkv: MatrixView?, output: MatrixView?, gateUp: MatrixView?, down: MatrixView?
    let ln1: UnsafeMutableBufferPointer<Float>?, ln2: UnsafeMutableBufferPointer<Float>?
    let extras: BlockExtras

    init(_ tensors: BlockTensors) {
        (qkv, output, gateUp, down) = (tensors.qkv, tensors.output, tensors.gateUp, tensors.down)
        (ln1, ln2, extras) = (tensors.ln1, tensors.ln2, tensors.extras)
    }

    private init() {
        (qkv, output, gateUp, down, ln1, ln2, extras) = (nil, nil, nil, nil, nil, nil, BlockExtras())
    }

    /// No gradients: every parameter of the block is frozen.
    static var frozen: BlockGradients { BlockGradients() }
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
    /// Biases, QK-norm and post-norm gains, where the architecture has them.
    public let extras: BlockExtras

    public init(qkv: any LinearWeight, output: any LinearWeight, gateUp: any LinearWeight, down: any LinearWeight,
                ln1: UnsafeMutableBufferPointer<Float>, ln2: UnsafeMutableBufferPointer<Float>, extras: BlockExtras = BlockExtras()) {
        (self.qkv, self.output, self.gateUp, self.down, self.ln1, self.ln2) = (qkv, output, gateUp, down, ln1, ln2)
        self.extras = extras
    }

    /// The Float32 views of `tensors`.
    public init(_ tensors: BlockTensors) {
        self.init(qkv: tensors.qkv, output: tensors.output, gateUp: tensors.gateUp, down: tensors.down, ln1: tensors.ln1, ln2: tensors.ln2,
                  extras: tensors.extras)
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
    /// [vocab, C]: the embedding itself when the architecture ties them (so both uses'
    /// gradients add into one tensor).
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
        /// The vector starting at tensor `name`, `count` long (a fused group), when the layout has it.
        func optionalVector(_ name: String, count: Int? = nil) -> UnsafeMutableBufferPointer<Float>? {
            layout.entry(name).map { buffer.slice($0.offset, count ?? $0.count) }
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
                ln1: vector(prefix + "ln1.weight"), ln2: vector(prefix + "ln2.weight"),
                extras: BlockExtras(
                    qkvBias: optionalVector(prefix + "attn.q_proj.bias", count: config.qkvWidth),
                    queryNorm: optionalVector(prefix + "attn.q_norm.weight"), keyNorm: optionalVector(prefix + "attn.k_norm.weight"),
                    postAttentionNorm: optionalVector(prefix + "post_attn_norm.weight"),
                    postFeedForwardNorm: optionalVector(prefix + "post_ffn_norm.weight")))
        }
        finalNorm = vector("ln_final.weight")
        head = config.architecture.tiedEmbeddings ? embedding : matrix("lm_head.weight")
    }
}
