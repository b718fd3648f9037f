import Foundation
import Kernels
@testable import Model
import TensorIO
import TestSupport
import XCTest

/// A run directory as a set: one checkpoint published at a time, one writer, resumes that check
/// what they resume, and runs of the old layout still resuming.
final class RunDirectoryTests: TemporaryDirectoryTestCase {
    static let config = TrainerTests.config

    func data(seed: UInt64 = 1) throws -> TokenDataset {
        var generator = SeededGenerator(seed: seed)
        let ids = (0..<3000).map { _ in Int32.random(in: 0..<Int32(Self.config.vocabSize), using: &generator) }
        let path = directory + "/ids-\(seed).npy"
        try NPYWriter.write(ids, shape: [ids.count], to: path)
        return try TokenDataset(path: path, vocabSize: Self.config.vocabSize)
    }

    func options(steps: Int) -> TrainingOptions {
        var options = TrainingOptions()
        (options.steps, options.batchSize, options.contextLength, options.warmupSteps) = (steps, 3, 8, 2)
        (options.evalInterval, options.evalBatches, options.checkpointInterval, options.seed) = (4, 1, 2, 17)
        return options
    }

    func trainer(_ run: String, steps: Int = 10, seed: UInt64 = 3) throws -> Trainer {
        try Trainer(model: try TransformerLM(config: Self.config, seed: seed), options: options(steps: steps), training: try data(),
                    validation: nil, tokenizer: nil, runDirectory: run)
    }

    func testACheckpointIsOneFolderNamedByCurrentAndTheTopLevelIsAModel() throws {
        let run = directory + "/run"
        let trainer = try trainer(run)
        XCTAssertFalse(try trainer.run(shouldStop: { trainer.step == 6 }))
        let manager = FileManager.default
        let current = try manager.destinationOfSymbolicLink(atPath: run + "/current")
        XCTAssertTrue(current.hasPrefix("checkpoints/step-000000006-"), current)
        XCTAssertEqual(try manager.contentsOfDirectory(atPath: run + "/checkpoints"), [(current as NSString).lastPathComponent],
                       "older checkpoints are gone once the new one is published")
        for file in CheckpointFolder.files {
            XCTAssertEqual(try manager.destinationOfSymbolicLink(atPath: run + "/" + file), "current/" + file)
        }
        XCTAssertEqual(try Checkpoint.load(directory: run).parameters.array, trainer.model.parameters.array, "the run directory loads as a model")
        XCTAssertEqual(try RunDirectory(path: run).checkpoint.readState().step, 6)
    }

    func testASecondWriterIsRefusedWithTheHoldersPid() throws {
        let run = directory + "/run"
        let first = try trainer(run)
        XCTAssertThrowsError(try trainer(run)) {
            XCTAssertTrue("\($0)".contains("another process is writing this run (pid \(getpid()))"), "\($0)")
        }
        try first.run()
        XCTAssertThrowsError(try trainer(run)) { XCTAssertTrue("\($0)".contains("already holds a run"), "\($0)") }
        let resumed = try Trainer.resume(runDirectory: run, steps: 12)
        XCTAssertThrowsError(try Trainer.resume(runDirectory: run)) {
            XCTAssertTrue("\($0)".contains("another process is writing this run"), "\($0)")
        }
        try resumed.run()
    }

    func testAResumeRefusesWeightsOrAConfigurationTheStateDidNotRecord() throws {
        let run = directory + "/run", other = directory + "/other"
        try trainer(run).run()
        try trainer(other, seed: 9).run()
        let folder = RunDirectory(path: run).checkpoint
        // Another run's weights at the same step, with the step tag intact.
        let weights = folder.file(Checkpoint.weightsFile)
        try FileManager.default.removeItem(atPath: weights)
        try FileManager.default.copyItem(atPath: RunDirectory(path: other).checkpoint.file(Checkpoint.weightsFile), toPath: weights)
        XCTAssertThrowsError(try Trainer.resume(runDirectory: run, steps: 12)) {
            XCTAssertTrue("\($0)".contains("model.safetensors is not the weights this checkpoint wrote"), "\($0)")
        }
        XCTAssertNoThrow(try Trainer.resume(runDirectory: run, steps: 12, acceptChangedCheckpoint: true))
        // A changed rope_theta.
        try trainer(directory + "/third").run()
        let config = RunDirectory(path: directory + "/third").checkpoint.file(Checkpoint.configFile)
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "10000", with: "500")
        try FileManager.default.removeItem(atPath: config)
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Trainer.resume(runDirectory: directory + "/third", steps: 12)) {
            XCTAssertTrue("\($0)".contains("config.json differs from the configuration the run was training"), "\($0)")
        }
        XCTAssertThrowsError(try Trainer.resume(runDirectory: run, steps: 4, acceptChangedCheckpoint: true)) {
            XCTAssertTrue("\($0)".contains("steps 4 is below the step the run"), "\($0)")
        }
    }

    /// A run written before checkpoints had folders (its four files at the top, no `current`)
    /// resumes, ends exactly where an uninterrupted run does, and is moved to the new layout.
    func testARunOfTheOldLayoutResumes() throws {
        let whole = try trainer(directory + "/whole", steps: 12)
        try whole.run()
        let run = directory + "/old"
        let first = try trainer(run, steps: 12)
        XCTAssertFalse(try first.run(shouldStop: { first.step == 6 }))
        // Back to the old layout: the checkpoint's files at the top, no links, no folders.
        let manager = FileManager.default, folder = RunDirectory(path: run).checkpoint
        for file in CheckpointFolder.files {
            try manager.removeItem(atPath: run + "/" + file)
            try manager.copyItem(atPath: folder.file(file), toPath: run + "/" + file)
        }
        try manager.removeItem(atPath: run + "/current")
        try manager.removeItem(atPath: run + "/checkpoints")
        // Its state had no record of the weights either.
        var state = try CheckpointFolder(path: run).readState()
        (state.config, state.weightsFingerprint) = (nil, nil)
        try manager.removeItem(atPath: run + "/" + CheckpointFolder.stateFile)
        try CheckpointFolder(path: run).writeState(state)
        let resumed = try Trainer.resume(runDirectory: run)
        XCTAssertEqual(resumed.step, 6)
        XCTAssertTrue(try resumed.run())
        XCTAssertEqual(resumed.model.parameters.array, whole.model.parameters.array)
        XCTAssertNotNil(try? manager.destinationOfSymbolicLink(atPath: run + "/current"), "moved to the new layout")
    }

    func testStaleFilesOfAKilledWriterAreRemovedAndPermissionsKept() throws {
        let run = directory + "/run"
        let first = try trainer(run, steps: 12)
        XCTAssertFalse(try first.run(shouldStop: { first.step == 4 }))
        // What a SIGKILL mid-checkpoint leaves, and a run made private.
        let manager = FileManager.default
        try manager.createDirectory(atPath: run + "/checkpoints/.partial-step-000000005-dead", withIntermediateDirectories: true)
        XCTAssertTrue(manager.createFile(atPath: run + "/.metrics.jsonl.tmp-99999-1", contents: Data([1])))
        for file in CheckpointFolder.files + [RunDirectory.metricsFile] { XCTAssertEqual(chmod(run + "/" + file, 0o600), 0, file) }
        let resumed = try Trainer.resume(runDirectory: run)
        XCTAssertEqual(try manager.contentsOfDirectory(atPath: run + "/checkpoints").count, 1, "the partial folder is gone")
        XCTAssertFalse(manager.fileExists(atPath: run + "/.metrics.jsonl.tmp-99999-1"))
        try resumed.run()
        for file in CheckpointFolder.files + [RunDirectory.metricsFile] {
            var status = stat()
            XCTAssertEqual(stat(run + "/" + file, &status), 0)
            XCTAssertEqual(status.st_mode & 0o777, 0o600, "\(file) keeps its permissions")
        }
    }
}
