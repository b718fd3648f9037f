import Model
import Kernels

/// The model shape the bench is built around: CS336's TinyStories configuration.
struct BenchShape {
    var name = "TinyStories"
    var vocab = 10_000
    var context = 256
    var dModel = 512
    var layers = 4
    var heads = 16
    var dFF = 1_344
    var theta = 10_000.0

    init() {}

    /// The shape of a model configuration.
    init(_ config: ModelConfig) {
        name = "custom"
        vocab = config.vocabSize
        context = config.contextLength
        dModel = config.dModel
        layers = config.numLayers
        heads = config.numHeads
        dFF = config.dFF
        theta = config.ropeTheta
        groupedKVHeads = config.numKVHeads == config.numHeads ? nil : config.numKVHeads
        statedHeadDim = config.architecture.headDim
    }

    /// A one-off shape for small attention checks: `heads` heads of size `dModel / heads`.
    init(context: Int, heads: Int, dModel: Int) {
        self.context = context
        self.heads = heads
        self.dModel = dModel
    }

    /// The head size a family states (Gemma 3: 256), else `dModel / heads`.
    var statedHeadDim: Int?
    var headDim: Int { statedHeadDim ?? dModel / heads }
    /// Width of the queries and of the attention output: `heads · headDim`.
    var attentionWidth: Int { heads * headDim }
    /// Key/value heads when fewer than the query heads (grouped-query attention, as SmolLM2's).
    var groupedKVHeads: Int?
    /// Key/value heads: the query heads' own unless grouped.
    var kvHeads: Int { groupedKVHeads ?? heads }
    var qkvWidth: Int { (heads + 2 * kvHeads) * headDim }

    func attentionDims(batch: Int) -> AttentionDims {
        AttentionDims(batch: batch, queryLength: context, keyLength: context, heads: heads, kvHeads: kvHeads, headDim: headDim)
    }

    /// The GEMMs of one causal attention call (scores and values per head and causal block),
    /// mirroring ``ScaledDotProductAttention``'s blocking.
    func attentionGemms(batch: Int) -> GemmWork {
        var work: GemmWork = [:]
        var first = 0
        while first < context {
            let rows = min(ScaledDotProductAttention.causalBlockRows, context - first)
            let keys = first + rows
            work[GemmShape(m: rows, n: keys, k: headDim, transposeB: true), default: 0] += batch * heads
            work[GemmShape(m: rows, n: headDim, k: keys, transposeB: false), default: 0] += batch * heads
            first += rows
        }
        return work
    }

    func linearGemm(rows: Int, inFeatures: Int, outFeatures: Int) -> GemmWork {
        [GemmShape(m: rows, n: outFeatures, k: inFeatures, transposeB: true): 1]
    }

    /// A linear layer's backward: dX = dY·W and dW = dYᵀ·X.
    func linearBackwardGemms(rows: Int, inFeatures: Int, outFeatures: Int) -> GemmWork {
        [GemmShape(m: rows, n: inFeatures, k: outFeatures, transposeB: false): 1,
         GemmShape(m: outFeatures, n: inFeatures, k: rows, transposeA: true, transposeB: false): 1]
    }

    /// Attention's causal backward per (batch, head) and block of query rows, mirroring the
    /// kernel: dV += Pᵀ·dO, dP = dO·Vᵀ, dQ += dS·K, dK += dSᵀ·Q, each against the visible keys.
    func attentionBackwardGemms(batch: Int) -> GemmWork {
        var work: GemmWork = [:]
        var first = 0
        while first < context {
            let rows = min(ScaledDotProductAttention.causalBlockRows, context - first)
            let keys = first + rows
            work[GemmShape(m: keys, n: headDim, k: rows, transposeA: true, transposeB: false), default: 0] += 2 * batch * heads
            work[GemmShape(m: rows, n: keys, k: headDim, transposeB: true), default: 0] += batch * heads
            work[GemmShape(m: rows, n: headDim, k: keys, transposeB: false), default: 0] += batch * heads
            first += rows
        }
        return work
    }

    /// One block's backward GEMMs at [batch, context].
    func blockBackwardGemms(batch: Int) -> GemmWork {
        let rows = batch * context
        return linearBackwardGemms(rows: rows, inFeatures: dModel, outFeatures: qkvWidth)
            + attentionBackwardGemms(batch: batch)
            + linearBackwardGemms(rows: rows, inFeatures: dModel, outFeatures: dModel)
            + linearBackwardGemms(rows: rows, inFeatures: dModel, outFeatures: 2 * dFF)
            + linearBackwardGemms(rows: rows, inFeatures: dFF, outFeatures: dModel)
    }

    /// Matmul FLOPs per token of a training step (forward and backward, every weight matrix and
    /// the full T×T attention square, no causal saving): 3 × (2·matrix parameters + 4·L·T·C).
    var trainingFlopsPerToken: Double {
        let perLayer = dModel * qkvWidth + dModel * dModel + 3 * dModel * dFF
        let matrices = Double(layers * perLayer + vocab * dModel)
        return 3 * (2 * matrices + 4 * Double(layers * context * dModel))
    }
}
