import Foundation
import Model
import ReferenceKernels

/// The plain-loop reference (``Reference``) applied to a ``TransformerLM``'s own weights in
/// Double: what tests and the bench compare the BLAS model with.
public enum ReferenceModel {
    /// The reference's shape description of `config`.
    public static func shape(_ config: ModelConfig) -> ReferenceShape {
        ReferenceShape(dim: config.dModel, heads: config.numHeads, kvHeads: config.numKVHeads, hidden: config.dFF,
                       theta: config.ropeTheta, epsilon: Double(config.normEps))
    }

    /// A tensor of `model` widened to Double.
    public static func tensor(_ model: TransformerLM, _ name: String) -> [Double] {
        guard let view = model.tensor(name) else { preconditionFailure("ReferenceModel: no tensor \(name)") }
        return view.map(Double.init)
    }

    /// Layer `layer`'s weights in Double.
    public static func blockWeights(_ model: TransformerLM, layer: Int) -> ReferenceBlockWeights<Double> {
        func w(_ suffix: String) -> [Double] { tensor(model, "layers.\(layer).\(suffix)") }
        return ReferenceBlockWeights(wq: w("attn.q_proj.weight"), wk: w("attn.k_proj.weight"), wv: w("attn.v_proj.weight"),
                                     wo: w("attn.output_proj.weight"), w1: w("ffn.w1.weight"), w2: w("ffn.w2.weight"),
                                     w3: w("ffn.w3.weight"), ln1: w("ln1.weight"), ln2: w("ln2.weight"))
    }

    /// hidden: [length, dModel] → layer `layer`'s output [length, dModel], batch 1.
    public static func block(_ model: TransformerLM, layer: Int, hidden: [Float], length: Int) -> [Double] {
        Reference.transformerBlock(hidden.map(Double.init), blockWeights(model, layer: layer), batch: 1, length: length,
                                   shape: shape(model.config))
    }

    /// tokens: [batch, length] → logits [batch, length, vocab].
    public static func logits(_ model: TransformerLM, tokens: [Int32], batch: Int, length: Int) -> [Double] {
        let config = model.config
        return Reference.transformerLM(
            tokens: tokens.map(Int.init), embedding: tensor(model, "token_embeddings.weight"),
            blocks: (0..<config.numLayers).map { blockWeights(model, layer: $0) },
            finalNorm: tensor(model, "ln_final.weight"), head: tensor(model, "lm_head.weight"),
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
        let blocks = (0..<config.numLayers).map { layer -> ReferenceBlockWeights<Double> in
            func w(_ suffix: String) -> [Double] { tensor("layers.\(layer).\(suffix)") }
            return ReferenceBlockWeights(wq: w("attn.q_proj.weight"), wk: w("attn.k_proj.weight"), wv: w("attn.v_proj.weight"),
                                         wo: w("attn.output_proj.weight"), w1: w("ffn.w1.weight"), w2: w("ffn.w2.weight"),
                                         w3: w("ffn.w3.weight"), ln1: w("ln1.weight"), ln2: w("ln2.weight"))
        }
        return Reference.transformerLM(
            tokens: tokens.map(Int.init), embedding: tensor("token_embeddings.weight"), blocks: blocks,
            finalNorm: tensor("ln_final.weight"), head: tensor("lm_head.weight"),
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
