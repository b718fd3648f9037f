import Kernels
import Model
import TensorIO
import TestSupport
import XCTest

/// The whole model against `../shared/data/model`: a float64 PyTorch run of the same weights.
final class ReferenceModelTests: XCTestCase {
    func loadFixtures() throws -> (TransformerLM, SafeTensorsFile) {
        let directory = (try Fixtures.requireSharedData("model/config.json") as NSString).deletingLastPathComponent
        let model = try Checkpoint.load(directory: directory)
        let outputs = try SafeTensorsFile(path: try Fixtures.requireSharedData("model/reference_outputs.safetensors"))
        return (model, outputs)
    }

    func testLogitsMatchReference() throws {
        let (model, outputs) = try loadFixtures()
        let ids = try outputs.integers("input.token_ids", shape: [2, 20]).map { Int32($0) }
        let logits = try model.forward(tokens: ids, batch: 2, length: 20)
        assertClose(logits, try outputs.floats("lm.logits", shape: [2, 20, 300]), absolute: 1e-4, relative: 1e-5, "lm.logits")
    }

    func testOneBlockMatchesReference() throws {
        let (model, outputs) = try loadFixtures()
        let x = try outputs.floats("input.x", shape: [2, 20, 64])
        var y = [Float](repeating: .nan, count: x.count)
        try x.withUnsafeBufferPointer { x in
            try y.withUnsafeMutableBufferPointer { try model.forwardBlock(0, hidden: x, batch: 2, length: 20, output: $0) }
        }
        assertClose(y, try outputs.floats("block.layer0"), absolute: 2e-5, relative: 1e-5, "block.layer0")
    }

    /// The loss the training step computes (the fused cross-entropy kernel on the model's
    /// logits), against the float64 reference.
    func testNextTokenCrossEntropyMatchesReference() throws {
        let (model, outputs) = try loadFixtures()
        let ids = try outputs.integers("input.token_ids", shape: [2, 20]).map { Int32($0) }
        // Inputs are positions 0..<19 of each row, targets 1..<20.
        let inputs = (0..<2).flatMap { b in ids[(b * 20)..<(b * 20 + 19)] }
        let targets = (0..<2).flatMap { b in ids[(b * 20 + 1)..<(b * 20 + 20)] }
        let session = try TrainingSession(model: model, batch: 2, length: 19)
        let expected = Double(try outputs.floats("lm.cross_entropy_next_token")[0])
        let loss = try session.loss(inputs: inputs, targets: targets)
        XCTAssertEqual(loss, expected, accuracy: 1e-5, "loss alone")
        let lossWithGradients = try session.computeGradients(inputs: inputs, targets: targets)
        XCTAssertEqual(lossWithGradients, expected, accuracy: 1e-5, "loss of the training step")
    }
}
