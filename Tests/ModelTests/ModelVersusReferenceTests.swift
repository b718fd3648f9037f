import Kernels
import Model
import ReferenceKernels
import TestSupport
import Verification
import XCTest

/// The whole model against the plain-loop reference in Double, on random weights: self-contained
/// (no fixtures), with grouped-query attention and awkward sizes.
final class ModelVersusReferenceTests: XCTestCase {
    func testLogitsMatchTheReferenceInDouble() throws {
        let model = try ModelFactory.model()
        let config = model.config
        // Norm gains of 1 would hide a transposed or skipped weight: perturb them first.
        var generator = SeededGenerator(seed: 99)
        for name in ["layers.0.ln1.weight", "layers.1.ln2.weight", "ln_final.weight"] {
            let gains = model.tensor(name)!
            for i in gains.indices { gains[i] = 1 + Float.random(in: -0.5...0.5, using: &generator) }
        }
        let (batch, length) = (2, 11)
        let tokens = ModelFactory.tokens(batch * length, vocab: config.vocabSize, seed: 12)
        let logits = try model.forward(tokens: tokens, batch: batch, length: length)
        let expected = ReferenceModel.logits(model, tokens: tokens, batch: batch, length: length)
        assertClose(logits, expected, absolute: 1e-4, relative: 1e-4, "logits vs Reference.transformerLM")
    }
}
