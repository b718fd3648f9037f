import Foundation
import Model
import ReferenceKernels

/// The plain-loop reference (``Reference``) applied to a ``TransformerLM``'s own weights in
/// Double: what tests and the bench compare the BLAS model with.
public enum ReferenceModel {
    /// The reference's shape description of `config`.
    public static func shape(_ config: ModelConfig) -> ReferenceShape {
        var shape = ReferenceShape(dim: config.dModel, heads: config.numHeads, kvHeads: config.numKVHeads, hidden: config.dFF,
                                   theta: config.ropeTheta, epsilon: Double(config.normEps))
        let architecture = config.architecture
        shape.headDim = architecture.headDim
        shape.ropeHalves = architecture.ropeStyle == .halves
        shape.geluTanh = architecture.activation == .geluTanh
        shape.embeddingScale = architecture.embeddingScale.map(Double.init)
        shape.attentionScale = architecture.attentionScale.map(Double.init)
        shape.finalSoftcap = architecture.finalLogitSoftcap.map(Double.init)
        if !architecture.isLlama {
            shape.layers = (0..<config.numLayers).map { layer in
                let slides = architecture.slides(layer: layer)
                return ReferenceLayer(window: architecture.window(layer: layer),
                                      theta: slides ? architecture.localRopeTheta ?? config.ropeTheta : config.ropeTheta,
                                      ropeScale: slides ? 1 : architecture.globalRopeScale ?? 1)
            }
        }
        return shape
    }

    /// The reference's weights of block `layer`, each tensor given by `tensor(name)`.
    static func blockWeights(layer: Int, config: ModelConfig, _ tensor: (String) -> [Double]) -> ReferenceBlockWeights<Double> {
        func w(_ suffix: String) -> [Double] { tensor("layers.\(layer).\(suffix)") }
        var block = ReferenceBlockWeights(wq: w("attn.q_proj.weight"), wk: w("attn.k_proj.weight"), wv: w("attn.v_proj.weight"),
                                          wo: w("attn.output_proj.weight"), w1: w("ffn.w1.weight"), w2: w("ffn.w2.weight"),
                                          w3: w("ffn.w3.weight"), ln1: w("ln1.weight"), ln2: w("ln2.weight"))
        let architecture = config.architecture
        if architecture.qkvBias { block.qkvBias = (w("attn.q_proj.bias"), w("attn.k_proj.bias"), w("attn.v_proj.bias")) }
        if architecture.qkNorm { (block.queryNorm, block.keyNorm) = (w("attn.q_norm.weight"), w("attn.k_norm.weight")) }
        if architecture.postNorms { (block.postAttentionNorm, block.postFeedForwardNorm) = (w("post_attn_norm.weight"), w("post_ffn_norm.weight")) }
        return block
    }

    /// The head's tensor name: the embedding when tied.
    public static func headName(_ config: ModelConfig) -> String {
        config.architecture.tiedEmbeddings ? "token_embeddings.weight" : "lm_head.weight"
    }

    /// A tensor of `model` widened to Double.
    public static func tensor(_ model: TransformerLM, _ name: String) -> [Double] {
        guard let view = model.tensor(name) else { preconditionFailure("ReferenceModel: no tensor \(name)") }
        return view.map(Double.init)
    }

    /// Layer `layer`'s weights in Double.
    public static func blockWeights(_ model: TransformerLM, layer: Int) -> ReferenceBlockWeights<Double> {
        blockWeights(layer: layer, config: model.config) { tensor(model, $0) }
    }

    /// hidden: [length, dModel] → layer `layer`'s output [length, dModel], batch 1.
    public static func block(_ model: TransformerLM, layer: Int, hidden: [Float], length: Int) -> [Double] {
        let shape = shape(model.config)
        return Reference.transformerBlock(hidden.map(Double.init), blockWeights(model, layer: layer), batch: 1, length: length,
                                          shape: shape, layer: shape.layers.isEmpty ? nil : shape.layers[layer])
    }

    /// tokens: [batch, length] → logits [batch, length, vocab].
    public static func logits(_ model: TransformerLM, tokens: [Int32], batch: Int, length: Int) -> [Double] {
        let config = model.config
        return Reference.transformerLM(
            tokens: tokens.map(Int.init), embedding: tensor(model, "token_embeddings.weight"),
            blocks: (0..<config.numLayers).map { blockWeights(model, layer: $0) },
            finalNorm: tensor(model, "ln_final.weight"), head: tensor(model, headName(config)),
            batch: batch, length: length, vocab: config.vocabSize, shape: shape(config))
    }
}

extension ReferenceModel {
    /// tokens: [batch, length] → logits [batch, length, vocab] for parameters given in Double, in
    /// ``ParameterLayout`` order: the function finite differences perturb.
    public static func logits(parameters: [Double], config: ModelConfig, tokens: [Int32], batch: Int, length: Int) -> [Double] {
        let layout = ParameterLayout(config: config)
        precondition(parameters.count == layout.totalCount, "ReferenceModel: \(parameters.count) parameters, layout needs \(layout.totalCount)")
        func tensor(_ name: String) -> [Double] {
            guard let entry = layout.entry(name) else { preconditionFailure("ReferenceModel: no tensor \(name)") }
            return Array(parameters[entry.range])
        }
        let blocks = (0..<config.numLayers).map { blockWeights(layer: $0, config: config, tensor) }
        return Reference.transformerLM(
            tokens: tokens.map(Int.init), embedding: tensor("token_embeddings.weight"), blocks: blocks,
            finalNorm: tensor("ln_final.weight"), head: tensor(headName(config)),
            batch: batch, length: length, vocab: config.vocabSize, shape: shape(config))
    }

    /// The mean next-token cross-entropy of `logits` [rows, vocab] against `targets` [rows], in
    /// Double: `mean(logsumexp(logits[r]) − logits[r, targets[r]])`.
    public static func crossEntropy(logits: [Double], targets: [Int32], vocab: Int) -> Double {
        var total = 0.0
        for (row, target) in targets.enumerated() {
            let values = logits[(row * vocab)..<((row + 1) * vocab)]
            let maximum = values.max()!
            let logSumExp = maximum + Foundation.log(values.reduce(0) { $0 + Foundation.exp($1 - maximum) })
            total += logSumExp - values[row * vocab + Int(target)]
        }
        return total / Double(targets.count)
    }
}
