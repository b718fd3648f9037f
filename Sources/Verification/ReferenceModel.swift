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
