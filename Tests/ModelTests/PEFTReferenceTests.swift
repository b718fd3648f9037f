import Foundation
import Kernels
@testable import Model
import TensorIO
import TestSupport
import XCTest

/// LoRA against PyTorch + PEFT (`Fixtures/LoRA`, made by `scripts/lora/make_peft_fixtures.py` in
/// float64): for a tiny random model of each family saved by transformers and an adapter saved by
/// PEFT, our logits with the adapter applied, without it, and merged, the loss over the targets
/// that count, and the gradient of every adapter tensor.
final class PEFTReferenceTests: TemporaryDirectoryTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/LoRA").path

    func testLogitsLossAndGradientsEqualPEFTs() throws {
        for family in ["llama", "qwen2", "qwen3", "gemma3"] {
            let folder = Self.fixtures + "/" + family
            let model = try Checkpoint.load(modelAt: folder + "/model")
            let adapter = try PEFTAdapter.read(directory: folder + "/adapter", config: model.config)
            XCTAssertEqual(adapter.settings, LoRAAdapter.Settings(rank: 4, alpha: 8), family)
            let reference = try SafeTensorsFile(path: folder + "/reference.safetensors")
            let inputs = try reference.integers("inputs").map(Int32.init), targets = try reference.integers("targets").map(Int32.init)
            let (batch, length) = (2, inputs.count / 2)

            let base = try model.forward(tokens: inputs, batch: batch, length: length)
            assertClose(base, try reference.floats("base_logits"), absolute: 2e-5, relative: 1e-4, "\(family): base logits")
            try model.apply(adapter: adapter)
            let adapted = try model.forward(tokens: inputs, batch: batch, length: length)
            assertClose(adapted, try reference.floats("logits"), absolute: 2e-5, relative: 1e-4, "\(family): logits with the adapter")
            try model.apply(adapter: nil)
            let merged = try TransformerLM(config: model.config, parameters: TensorBuffer(model.parameters.array))
            try adapter.merge(into: merged)
            assertClose(try merged.forward(tokens: inputs, batch: batch, length: length), try reference.floats("merged_logits"),
                        absolute: 2e-5, relative: 1e-4, "\(family): merged logits")

            let session = try TrainingSession(model: model, batch: batch, length: length, adapter: adapter)
            let loss = try session.computeGradients(inputs: inputs, targets: targets)
            let expectedLoss = try reference.floats("loss")[0]
            XCTAssertEqual(loss, Double(expectedLoss), accuracy: 1e-5, "\(family): loss")
            // Our gradients written as PEFT names them (Llama's q/k rows back in transformers' order).
            let gradients = try LoRAAdapter(settings: adapter.settings, config: model.config, parameters: session.gradients)
            try PEFTAdapter.write(gradients, to: directory + "/" + family, baseModel: nil)
            let ours = try SafeTensorsFile(path: directory + "/" + family + "/" + PEFTAdapter.weightsFile)
            XCTAssertEqual(ours.entries.count, reference.entries.filter { $0.name.hasPrefix("grad.") }.count, family)
            var worst: Double = 0
            for entry in ours.entries {
                let expected = try reference.floats("grad." + entry.name), actual = try ours.floats(entry.name)
                let scale = max(expected.map { abs(Double($0)) }.max() ?? 0, 1e-3)
                worst = max(worst, zip(actual, expected).map { abs(Double($0) - Double($1)) / scale }.max() ?? 0)
                assertClose(actual, expected, absolute: 1e-4 * scale, "\(family): \(entry.name)")
            }
            print("\(family): max |Δ| of the adapter's gradients against PEFT, relative to each tensor's largest: \(worst)")
        }
    }
}
