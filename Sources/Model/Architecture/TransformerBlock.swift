import Kernels

/// One pre-norm block: `h = x + attention(rmsnorm(x))`, then `y = h + ffn(rmsnorm(h))`; with
/// post-norms (Gemma) each branch is normed once more before it joins the stream:
/// `h = x + rmsnorm(attention(rmsnorm(x)))`, `y = h + rmsnorm(ffn(rmsnorm(h)))`. The only
/// implementation of the block, used by the full forward, the cached decode step (with a KV
/// cache) and, mirrored, the backward; what a family changes comes in as data
/// (``BlockWeights/extras``, ``BlockSettings``).
public enum TransformerBlock {
    /// Reads `a.input` and writes `a.output`, keeping every intermediate in `a`. With `cache`,
    /// keys and values go into it and attention reads every cached position. `rope` nil runs
    /// attention without rotary positions.
    public static func forward(weights w: BlockTensors, activations a: BlockActivations, dims: AttentionDims,
                               rope: RotaryPositions?, epsilon: Float, cache: KVCacheSlot? = nil) {
        forward(using: BlockWeights(w), activations: a, dims: dims, rope: rope, settings: BlockSettings(epsilon: epsilon),
                cache: cache.map { KVCacheRows.sequence($0) })
    }

    /// The same with weights in any ``/Kernels/LinearWeight`` form (block-quantized matrices for
    /// inference), a family's settings, and the cache of one sequence or of one row per sequence
    /// (a batched decode step).
    ///
    /// `intervene` (activation patching) is called as each branch is about to join the stream:
    /// with the branch in `a.postAttention.raw` / `a.postFeedForward.raw` where the family norms
    /// it first, else already added into `a.afterAttention` / `a.output`.
    public static func forward(using w: BlockWeights, activations a: BlockActivations, dims: AttentionDims,
                               rope: RotaryPositions?, settings: BlockSettings, cache: KVCacheRows? = nil,
                               intervene: ((Branch, BlockActivations) -> Void)? = nil) {
        RMSNorm.forward(x: a.input, weight: w.ln1, y: a.norm1, rstd: a.rstd1, epsilon: settings.epsilon)
        let attention = a.postAttention?.raw ?? a.afterAttention
        if a.postAttention == nil { a.afterAttention.copy(from: a.input) }
        CausalSelfAttention.forward(x: a.norm1, qkvWeight: w.qkv, outputWeight: w.output, rope: rope, y: attention,
                                    qkv: a.qkv, saved: a.attention, context: a.context, dims: dims, accumulate: a.postAttention == nil,
                                    cache: cache, variant: settings.attentionVariant(w.extras), qkNorm: a.qkNorm)
        intervene?(.attention, a)
        if let post = a.postAttention, let gain = w.extras.postAttentionNorm {
            RMSNorm.forward(x: post.raw, weight: gain, y: post.normed, rstd: post.rstd, epsilon: settings.epsilon)
            a.afterAttention.sum(a.input, post.normed)
        }
        RMSNorm.forward(x: a.afterAttention, weight: w.ln2, y: a.norm2, rstd: a.rstd2, epsilon: settings.epsilon)
        let feedForward = a.postFeedForward?.raw ?? a.output
        if a.postFeedForward == nil { a.output.copy(from: a.afterAttention) }
        SwiGLU.forward(x: a.norm2, gateUpWeight: w.gateUp, downWeight: w.down, y: feedForward,
                       gateUp: a.gateUp, gated: a.gated, accumulate: a.postFeedForward == nil, activation: settings.activation)
        intervene?(.feedForward, a)
        if let post = a.postFeedForward, let gain = w.extras.postFeedForwardNorm {
            RMSNorm.forward(x: post.raw, weight: gain, y: post.normed, rstd: post.rstd, epsilon: settings.epsilon)
            a.output.sum(a.afterAttention, post.normed)
        }
    }

    /// The two branches of a block.
    public enum Branch: Sendable { case attention, feedForward }

    /// The forward's gradients. On entry `workspace.dResidual` holds ∂L/∂output; on return it
    /// holds ∂L/∂input (both residual paths included). Weight gradients accumulate into
    /// `gradients` (where it has a place for them: a frozen base has none), and adapters'
    /// into their own (``/Kernels/LoRAWeight``).
    static func backward(weights w: BlockWeights, gradients g: BlockGradients, saved a: BlockActivations,
                         workspace: BackwardWorkspace, dims: AttentionDims, rope: RotaryPositions?, settings: BlockSettings) {
        let (dResidual, dNorm) = (workspace.dResidual, workspace.dNorm)
        // y = h + [postnorm](ffn(norm2(h))): the branch's gradient reaches h through norm2; the identity path is already there.
        var dFeedForward = dResidual
        if let post = a.postFeedForward, let gain = w.extras.postFeedForwardNorm {
            workspace.dBranch.fill(0)
            RMSNorm.backward(dy: dResidual, x: post.raw, weight: gain, rstd: post.rstd, dx: workspace.dBranch, dWeight: g.extras.postFeedForwardNorm)
            dFeedForward = workspace.dBranch
        }
        dNorm.fill(0)
        SwiGLU.backward(dy: dFeedForward, x: a.norm2, gateUpWeight: w.gateUp, downWeight: w.down, gateUp: a.gateUp, gated: a.gated,
                        dGated: workspace.dGated, dGateUp: workspace.dGateUp, dx: dNorm,
                        dGateUpWeight: g.gateUp, dDownWeight: g.down, activation: settings.activation)
        RMSNorm.backward(dy: dNorm, x: a.afterAttention, weight: w.ln2, rstd: a.rstd2, dx: dResidual, dWeight: g.ln2)
        // h = x + [postnorm](attention(norm1(x))), likewise.
        var dAttention = dResidual
        if let post = a.postAttention, let gain = w.extras.postAttentionNorm {
            workspace.dBranch.fill(0)
            RMSNorm.backward(dy: dResidual, x: post.raw, weight: gain, rstd: post.rstd, dx: workspace.dBranch, dWeight: g.extras.postAttentionNorm)
            dAttention = workspace.dBranch
        }
        dNorm.fill(0)
        CausalSelfAttention.backward(dy: dAttention, x: a.norm1, qkvWeight: w.qkv, outputWeight: w.output, rope: rope,
                                     qkv: a.qkv, saved: a.attention, context: a.context,
                                     dContext: workspace.dContext, dQKV: workspace.dQKV, scratch: workspace.scratch,
                                     dx: dNorm, dQKVWeight: g.qkv, dOutputWeight: g.output, dims: dims,
                                     variant: settings.attentionVariant(w.extras), qkNorm: a.qkNorm,
                                     dVariant: settings.attentionVariant(g.extras), dQKRaw: workspace.dQKRaw)
        RMSNorm.backward(dy: dNorm, x: a.input, weight: w.ln1, rstd: a.rstd1, dx: dResidual, dWeight: g.ln1)
    }
}

/// What a block's layer of a family computes with besides its weights: the norms' epsilon, the
/// feed-forward gate, and the attention's window and scale (``Architecture`` per layer).
public struct BlockSettings: Sendable {
    public var epsilon: Float
    public var activation: GatedActivation
    /// The layer's sliding window; nil: global.
    public var window: Int?
    /// nil: `1/√d`.
    public var attentionScale: Float?

    public init(epsilon: Float, activation: GatedActivation = .silu, window: Int? = nil, attentionScale: Float? = nil) {
        (self.epsilon, self.activation, self.window, self.attentionScale) = (epsilon, activation, window, attentionScale)
    }

    /// Layer `layer` of a model with `config`.
    public init(config: ModelConfig, layer: Int) {
        let architecture = config.architecture
        self.init(epsilon: config.normEps, activation: architecture.activation, window: architecture.window(layer: layer),
                  attentionScale: architecture.attentionScale)
    }

    /// The attention of a block with `extras` (parameters, or their gradients).
    func attentionVariant(_ extras: BlockExtras) -> AttentionVariant {
        AttentionVariant(qkvBias: extras.qkvBias, queryNorm: extras.queryNorm, keyNorm: extras.keyNorm, normEpsilon: epsilon,
                         window: window, scale: attentionScale)
    }
}
