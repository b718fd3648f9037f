import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Kernels
@testable import Model
import TensorIO
import TestSupport
import XCTest

/// The training loop over a run directory: resuming is exact, files are complete, bad input is named.
final class TrainerTests: TemporaryDirectoryTestCase {
    static let config = ModelConfig(vocabSize: 29, contextLength: 16, dModel: 16, numLayers: 2, numHeads: 2, dFF: 24, ropeTheta: 10_000)

    /// A token file with structure to learn: a repeating pattern with noise.
    func tokenFile(_ name: String, count: Int, seed: UInt64) throws -> String {
        var generator = SeededGenerator(seed: seed)
        let ids = (0..<count).map { i -> Int32 in generator.next() % 5 == 0 ? Int32(generator.next() % 29) : Int32(i % 7 + i % 3) }
        let path = directory + "/" + name
        try NPYWriter.write(ids, shape: [ids.count], to: path)
        return path
    }

    func options(steps: Int) -> TrainingOptions {
        var options = TrainingOptions()
        options.steps = steps
        options.batchSize = 3
        options.contextLength = 8
        options.warmupSteps = 2
        options.maxLearningRate = 1e-2
        options.minLearningRate = 1e-3
        options.evalInterval = 4
        options.evalBatches = 2
        options.checkpointInterval = 5
        options.seed = 17
        return options
    }

    func testResumingGivesBitIdenticalWeights() throws {
        let data = try TokenDataset(path: try tokenFile("ids.npy", count: 3000, seed: 1), vocabSize: Self.config.vocabSize)
        // 12 steps in one go.
        let whole = try Trainer(model: try TransformerLM(config: Self.config, seed: 3), options: options(steps: 12), training: data,
                                validation: nil, tokenizer: nil, runDirectory: directory + "/whole")
        try whole.run()
        // 6 steps, stop, resume from the files, 6 more.
        let first = try Trainer(model: try TransformerLM(config: Self.config, seed: 3), options: options(steps: 12), training: data,
                                validation: nil, tokenizer: nil, runDirectory: directory + "/split")
        XCTAssertFalse(try first.run(shouldStop: { first.step == 6 }))
        let resumed = try Trainer.resume(runDirectory: directory + "/split")
        XCTAssertEqual(resumed.step, 6)
        XCTAssertTrue(try resumed.run())
        XCTAssertEqual(resumed.model.parameters.array, whole.model.parameters.array, "weights after 6 + 6 steps equal 12 in one go, bit for bit")
        XCTAssertEqual(resumed.optimizer.firstMoment.array, whole.optimizer.firstMoment.array)
        XCTAssertEqual(try Checkpoint.load(directory: directory + "/split").parameters.array, whole.model.parameters.array, "and the files hold them")
        XCTAssertEqual(resumed.records.map(\.step), whole.records.map(\.step))
        XCTAssertEqual(resumed.records.last?.valLoss, whole.records.last?.valLoss)
    }

    func testRunDirectoryHoldsMetricsPlotAndAGeneratableModel() throws {
        let data = try TokenDataset(path: try tokenFile("ids.npy", count: 4000, seed: 2), vocabSize: Self.config.vocabSize)
        var options = options(steps: 40)
        options.evalInterval = 10
        let run = directory + "/run"
        let trainer = try Trainer(model: try TransformerLM(config: Self.config, seed: 4), options: options, training: data,
                                  validation: nil, tokenizer: nil, runDirectory: run)
        var reported: [TrainingProgress] = []
        try trainer.run(progress: { reported.append($0) })
        XCTAssertEqual(reported.map(\.step), Array(1...40))
        let evaluations = trainer.records.compactMap(\.valLoss)
        XCTAssertEqual(evaluations.count, 4)
        XCTAssertLessThan(evaluations.last!, evaluations.first!, "validation loss falls")
        let lines = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, trainer.records.count)
        let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any]
        for key in ["step", "tokens", "train_loss", "val_loss", "elapsed_s"] { XCTAssertNotNil(last[key], key) }
        let svg = try String(contentsOfFile: run + "/loss.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("polyline") && svg.contains(">step<"), "an SVG with curves and labelled axes")
        _ = try XMLDocument(xmlString: svg, options: [])  // well-formed XML
        let model = try Checkpoint.load(directory: run)
        XCTAssertEqual(model.parameters.array, trainer.model.parameters.array)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: run).filter { $0.hasPrefix(".") && $0 != RunLock.file }
        XCTAssertEqual(leftovers, [], "no temporary files left behind")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints").filter { $0.hasPrefix(".") }, [])
    }

    func testBadInputIsNamed() throws {
        let small = try TokenDataset(path: try tokenFile("small.npy", count: 8, seed: 3), vocabSize: Self.config.vocabSize)
        XCTAssertThrowsError(try Trainer(model: try TransformerLM(config: Self.config, seed: 5), options: options(steps: 2), training: small,
                                         validation: small, tokenizer: nil, runDirectory: directory + "/r")) {
            XCTAssertTrue("\($0)".contains("too few"), "\($0)")
        }
        XCTAssertThrowsError(try TokenDataset(path: try tokenFile("ids.npy", count: 100, seed: 4), vocabSize: 20)) {
            XCTAssertTrue("\($0)".contains("outside the vocabulary 0..<20"), "\($0)")
        }
        var tooLong = options(steps: 2)
        tooLong.contextLength = 17
        let data = try TokenDataset(path: try tokenFile("ok.npy", count: 500, seed: 5), vocabSize: Self.config.vocabSize)
        XCTAssertThrowsError(try Trainer(model: try TransformerLM(config: Self.config, seed: 5), options: tooLong, training: data,
                                         validation: nil, tokenizer: nil, runDirectory: directory + "/r2")) {
            XCTAssertTrue("\($0)".contains("contextLength 17"), "\($0)")
        }
        XCTAssertThrowsError(try Trainer.resume(runDirectory: directory + "/nothing-here"))
    }

    func testANonFiniteLossStopsWithoutWriting() throws {
        let data = try TokenDataset(path: try tokenFile("ids.npy", count: 2000, seed: 6), vocabSize: Self.config.vocabSize)
        let model = try TransformerLM(config: Self.config, seed: 6)
        var options = options(steps: 10)
        options.checkpointInterval = 2
        let trainer = try Trainer(model: model, options: options, training: data, validation: nil, tokenizer: nil, runDirectory: directory + "/nan")
        try trainer.run(shouldStop: { trainer.step == 2 })
        let saved = try Checkpoint.load(directory: directory + "/nan").parameters.array
        model.tensor("lm_head.weight")![0] = .nan
        XCTAssertThrowsError(try trainer.run()) { XCTAssertTrue("\($0)".contains("step 3: the training loss is nan"), "\($0)") }
        XCTAssertEqual(try Checkpoint.load(directory: directory + "/nan").parameters.array, saved, "the last good checkpoint stays")
    }
}
