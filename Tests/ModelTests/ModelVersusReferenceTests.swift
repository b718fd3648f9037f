import Kernels
import Model
import ReferenceKernels
import TestSupport
import XCTest

/// The whole model against the plain-loop reference in Double, on random weights: self-contained
/// (no fixtures), with grouped-query attention and awkward sizes.
final class ModelVersusReferenceTests: XCTestCase {
    func weights(_ model: TransformerLM, _ name: String) -> [Double] { model.tensor(name)!.map(Double.init) }

    func testLogitsMatchTheReferenceInDouble() throws {
        let model = try ModelFactory.model()
        let config = model.config
        let blocks = (0..<config.numLayers).map { layer -> ReferenceBlockWeights<Double> in
            let p = "layers.\(layer)."
            return ReferenceBlockWeights(
                wq: weights(model, p + "attn.q_proj.weight"), wk: weights(model, p + "attn.k_proj.weight"),
                wv: weights(model, p + "attn.v_proj.weight"), wo: weights(model, p + "attn.output_proj.weight"),
                w1: weights(model, p + "ffn.w1.weight"), w2: weights(model, p + "ffn.w2.weight"), w3: weights(model, p + "ffn.w3.weight"),
                ln1: weights(model, p + "ln1.weight"), ln2: weights(model, p + "ln2.weight"))
        }
        // Norm gains of 1 would hide a transposed or skipped weight: perturb them first.
        var generator = SeededGenerator(seed: 99)
        for name in ["layers.0.ln1.weight", "layers.1.ln2.weight", "ln_final.weight"] {
            let gains = model.tensor(name)!
            for i in gains.indices { gains[i] = 1 + Float.random(in: -0.5...0.5, using: &generator) }
        }
        var referenceBlocks = blocks
        referenceBlocks[0].ln1 = weights(model, "layers.0.ln1.weight")
        referenceBlocks[1].ln2 = weights(model, "layers.1.ln2.weight")
        let (batch, length) = (2, 11)
        let tokens = ModelFactory.tokens(batch * length, vocab: config.vocabSize, seed: 12)
        let logits = try model.forward(tokens: tokens, batch: batch, length: length)
        let expected = Reference.transformerLM(
            tokens: tokens.map(Int.init), embedding: weights(model, "token_embeddings.weight"), blocks: referenceBlocks,
            finalNorm: weights(model, "ln_final.weight"), head: weights(model, "lm_head.weight"),
            batch: batch, length: length, vocab: config.vocabSize,
            shape: ReferenceShape(dim: config.dModel, heads: config.numHeads, kvHeads: config.numKVHeads, hidden: config.dFF, theta: config.ropeTheta))
        assertClose(logits, expected, absolute: 1e-4, relative: 1e-4, "logits vs Reference.transformerLM")
    }
}
