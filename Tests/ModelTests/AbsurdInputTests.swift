import Foundation
import Kernels
@testable import Model
import TensorIO
import Tokenizer
import XCTest

/// Numbers that are well-formed but absurd, and weights that are not numbers: errors, not crashes.
final class AbsurdInputTests: XCTestCase {
    func configError(_ change: (inout ModelConfig) -> Void) -> String {
        var config = ModelConfig(vocabSize: 100, contextLength: 64, dModel: 32, numLayers: 2, numHeads: 4, dFF: 64, ropeTheta: 10_000)
        change(&config)
        do { try config.validate() } catch { return "\(error)" }
        return "no error"
    }

    func testAbsurdConfigurationsAreRefusedBeforeAllocating() {
        let message = configError { $0.dModel = 1_000_000_000; $0.numHeads = 1; $0.numKVHeads = 1 }
        XCTAssertTrue(message.contains("d_model 1000000000") && message.contains("EB of parameters"), message)
        XCTAssertTrue(configError { $0.dFF = 1_000_000_000_000_000_000 }.contains("of parameters, more than half of this machine's"))
        XCTAssertTrue(configError { $0.contextLength = 1_000_000_000_000_000 }.contains("context_length 1000000000000000 would need"))
        XCTAssertTrue(configError { $0.numLayers = 100_000_000 }.contains("num_layers 100000000 is above the 4096"))
        XCTAssertEqual(configError { _ in }, "no error")
    }

    func testACheckpointIsComparedWithTheConfigurationFirst() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("absurd-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = try TransformerLM(config: ModelFactory.small, seed: 1)
        try Checkpoint.save(model, directory: directory)
        // A configuration with many more (and wider) layers than the file holds, within the
        // size checks: the file's header is compared before anything is allocated.
        var bigger = ModelFactory.small
        bigger.numLayers = 4000
        bigger.dFF = 2_000  // about 3 GB of parameters
        XCTAssertNoThrow(try bigger.validate())
        XCTAssertThrowsError(try Checkpoint.load(weights: directory + "/model.safetensors", config: bigger)) {
            XCTAssertTrue("\($0)".contains("tensor 'layers.0.ffn.w1.weight' has shape [44, 32], expected [2000, 32]"), "\($0)")
        }
    }

    func testNonFiniteWeightsAreNamedOnLoadAndStopGeneration() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nan-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = try TransformerLM(config: ModelFactory.small, seed: 2)
        let head = model.tensor("lm_head.weight")!
        head[3] = .nan
        head[7] = .infinity
        try Checkpoint.save(model, directory: directory)
        XCTAssertThrowsError(try Checkpoint.load(directory: directory)) {
            XCTAssertTrue("\($0)".contains("tensor 'lm_head.weight' has 2 non-finite values"), "\($0)")
        }
        XCTAssertThrowsError(try Generator(model: model).generate(prompt: [1, 2], options: GenerationOptions(maxTokens: 5)) { _ in true }) {
            XCTAssertTrue("\($0)".contains("generation stopped at token 1"), "\($0)")
        }
    }

    func testAbsurdTokenizerSizesAreRefused() {
        var bytes = Array("some text".utf8)
        XCTAssertThrowsError(try bytes.withUnsafeMutableBufferPointer {
            try BPETrainer.train(bytes: UnsafeBufferPointer($0), options: BPETrainingOptions(vocabSize: 1_099_511_627_776))
        }) { XCTAssertTrue("\($0)".contains("larger than the 16777216 this trainer supports"), "\($0)") }
    }
}
