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

    func testNextTokenCrossEntropyMatchesReference() throws {
        let (model, outputs) = try loadFixtures()
        let ids = try outputs.integers("input.token_ids", shape: [2, 20])
        let logits = try model.forward(tokens: ids.map { Int32($0) }, batch: 2, length: 20)
        // Mean over (b, t < T−1) of −log softmax(logits[b, t])[ids[b, t+1]], in Double.
        var total = 0.0
        for b in 0..<2 {
            for t in 0..<19 {
                let row = logits[((b * 20 + t) * 300)..<((b * 20 + t + 1) * 300)].map(Double.init)
                let maximum = row.max()!
                let logSum = log(row.map { exp($0 - maximum) }.reduce(0, +)) + maximum
                total += logSum - row[ids[b * 20 + t + 1]]
            }
        }
        XCTAssertEqual(total / 38, Double(try outputs.floats("lm.cross_entropy_next_token")[0]), accuracy: 1e-5)
    }
}
