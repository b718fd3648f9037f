import Foundation
import Kernels
import TensorIO
import TestSupport
import XCTest

/// A training run survives anything: SIGKILL at random moments, a second Ctrl-C, SIGHUP, a disk
/// that fills up. After each, `lm train --resume` continues from the newest complete checkpoint
/// and ends with weights bit-identical to a run that was never interrupted.
final class CrashSafetyTests: TemporaryDirectoryTestCase {
    static let steps = 600

    /// A tiny model and token file: a step takes well under a millisecond, so the run's time is
    /// spent writing its checkpoint after every step, where an interruption hurts most.
    func prepare() throws -> (config: String, tokens: String) {
        let config = directory + "/config.json", tokens = directory + "/ids.npy"
        let text = #"{"vocab_size": 40, "context_length": 16, "d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 24, "rope_theta": 10000}"#
        try Data(text.utf8).write(to: URL(fileURLWithPath: config))
        var generator = SeededGenerator(seed: 3)
        try NPYWriter.write((0..<3000).map { _ in Int32.random(in: 0..<40, using: &generator) }, shape: [3000], to: tokens)
        return (config, tokens)
    }

    func fresh(_ run: String, _ files: (config: String, tokens: String)) -> [String] {
        ["train", "--config", files.config, "--train", files.tokens, "--output", run, "--steps", String(Self.steps),
         "--batch-size", "2", "--context", "8", "--checkpoint-interval", "1", "--eval-interval", "40", "--eval-batches", "1",
         "--threads", "1", "--quiet"]
    }

    func resume(_ run: String) -> [String] { ["train", "--resume", run, "--threads", "1", "--quiet"] }

    /// The step of the run's newest complete checkpoint, or nil when it has none.
    func checkpointStep(_ run: String) -> Int? {
        guard let data = FileManager.default.contents(atPath: run + "/training_state.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["step"] as? Int
    }

    /// The weights of the run's newest checkpoint, exactly as stored.
    func weights(_ run: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: run + "/model.safetensors")) }

    /// Resumes (or starts, when no checkpoint was written yet) until the run is complete.
    func complete(_ run: String, _ files: (config: String, tokens: String)) throws {
        for _ in 0..<3 where checkpointStep(run) != Self.steps {
            let result = try LMProcess.run(checkpointStep(run) == nil ? fresh(run, files) : resume(run))
            XCTAssertEqual(result.status, 0, result.error)
        }
        XCTAssertEqual(checkpointStep(run), Self.steps)
    }

    /// The uninterrupted run's final weights, made once for every test (the inputs are the same).
    nonisolated(unsafe) static var referenceWeights: Data?
    nonisolated(unsafe) static var referenceCheckpointBytes = 0

    func reference(_ files: (config: String, tokens: String)) throws -> Data {
        if let weights = Self.referenceWeights { return weights }
        let run = directory + "/reference"
        let result = try LMProcess.run(fresh(run, files))
        XCTAssertEqual(result.status, 0, result.error)
        let folder = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints").first)
        Self.referenceCheckpointBytes = try CheckpointFolderSize.bytes(run + "/checkpoints/" + folder)
        Self.referenceWeights = try weights(run)
        return Self.referenceWeights!
    }

    /// What every interruption must leave: either no checkpoint yet, or a complete one that
    /// `current` names, with at most one older folder beside it.
    func checkLeftBehind(_ run: String, _ what: String) {
        guard FileManager.default.fileExists(atPath: run + "/current") || checkpointStep(run) != nil else { return }
        XCTAssertNotNil(checkpointStep(run), "\(what): current names a checkpoint with its state")
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints")) ?? []).filter { !$0.hasPrefix(".") }
        XCTAssertLessThanOrEqual(folders.count, 2, "\(what): checkpoints \(folders)")
    }

    func testKilledAtRandomMomentsItResumesToTheSameWeights() throws {
        let files = try prepare()
        let expected = try reference(files)
        let run = directory + "/chaos"
        var generator = SeededGenerator(seed: 11)
        var kills = 0, attempts = 0
        while kills < 24, attempts < 80, checkpointStep(run) != Self.steps {
            attempts += 1
            let started = try LMProcess.start(checkpointStep(run) == nil ? fresh(run, files) : resume(run))
            usleep(UInt32.random(in: 30_000...450_000, using: &generator))
            if started.process.isRunning {
                kill(started.process.processIdentifier, SIGKILL)
                kills += 1
            }
            let result = LMProcess.finish(started)
            XCTAssertTrue(result.status == 0 || result.status == 128 + SIGKILL, "attempt \(attempts): \(result.status) \(result.error)")
            checkLeftBehind(run, "after kill \(kills)")
        }
        XCTAssertGreaterThanOrEqual(kills, 20, "the run finished before enough kills; make it longer")
        try complete(run, files)
        XCTAssertEqual(try weights(run), expected, "bit-identical to the uninterrupted run after \(kills) kills")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: run).filter { $0.contains(".tmp-") || $0.hasPrefix(".link-") }
        XCTAssertEqual(leftovers, [], "the last start removed what the killed ones left")
    }

    /// Starts `arguments` and waits until the run has a checkpoint, so that a signal lands mid-run.
    func startAndWaitForACheckpoint(_ arguments: [String], run: String) throws -> (process: Process, output: Pipe, error: Pipe) {
        let before = checkpointStep(run) ?? -1
        let started = try LMProcess.start(arguments)
        let deadline = Date().addingTimeInterval(30)
        while started.process.isRunning, (checkpointStep(run) ?? -1) <= before, Date() < deadline { usleep(5_000) }
        return started
    }

    func testASecondCtrlCStopsAtOnceAndTheRunResumes() throws {
        let files = try prepare()
        let expected = try reference(files)
        let run = directory + "/interrupted"
        for (index, gap) in [0, 5_000, 20_000, 40_000].enumerated() {
            let started = try startAndWaitForACheckpoint(checkpointStep(run) == nil ? fresh(run, files) : resume(run), run: run)
            guard started.process.isRunning else { break }
            kill(started.process.processIdentifier, SIGINT)
            usleep(UInt32(gap))
            kill(started.process.processIdentifier, SIGINT)
            let result = LMProcess.finish(started)
            XCTAssertEqual(result.status, 130, "double Ctrl-C \(index) (\(gap) µs apart): \(result.error)")
            checkLeftBehind(run, "after double Ctrl-C \(index)")
        }
        try complete(run, files)
        XCTAssertEqual(try weights(run), expected)
    }

    func testSIGHUPAndSIGTERMStopAfterACheckpointWithTheirExitCodes() throws {
        let files = try prepare()
        let expected = try reference(files)
        let run = directory + "/hung-up"
        for (signalNumber, status) in [(SIGHUP, Int32(129)), (SIGTERM, Int32(143))] {
            let started = try startAndWaitForACheckpoint(checkpointStep(run) == nil ? fresh(run, files) : resume(run), run: run)
            XCTAssertTrue(started.process.isRunning, "the run ended before the signal")
            kill(started.process.processIdentifier, signalNumber)
            let result = LMProcess.finish(started)
            XCTAssertEqual(result.status, status, result.error)
            let step = checkpointStep(run) ?? 0
            XCTAssertGreaterThan(step, 0)
            XCTAssertLessThan(step, Self.steps, "stopped early")
        }
        try complete(run, files)
        XCTAssertEqual(try weights(run), expected)
    }

    /// A run on a tmpfs with room for one checkpoint but not for the next beside it: the write
    /// fails with the disk named, the complete checkpoint stays, and the run resumes elsewhere.
    func testAFullDiskKeepsTheLastCompleteCheckpoint() throws {
        let files = try prepare()
        let expected = try reference(files)
        let mountPoint = directory + "/small-disk"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        // One checkpoint of the reference run, in 4 KiB pages.
        let checkpointBytes = Self.referenceCheckpointBytes
        // Room for one checkpoint and the run's small files, not for a second checkpoint beside it.
        let size = (checkpointBytes * 3 / 2 + 16 * 1024) / 4096 * 4096
        guard Self.tool("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", mountPoint]) == 0 else {
            let message = "SKIPPED: cannot mount a small tmpfs here (needs root); the full-disk case did not run"
            print(message)
            throw XCTSkip(message)
        }
        defer { _ = Self.tool("/bin/umount", [mountPoint]) }
        let run = mountPoint + "/run"
        let result = try LMProcess.run(fresh(run, files))
        XCTAssertNotEqual(result.status, 0, "the disk filled up")
        XCTAssertTrue(result.error.contains("No space left on device"), result.error)
        let step = try XCTUnwrap(checkpointStep(run), "a complete checkpoint survived")
        XCTAssertLessThan(step, Self.steps)
        checkLeftBehind(run, "after the disk filled")
        // The same run, moved to a disk with room, continues exactly.
        let moved = directory + "/moved"
        XCTAssertEqual(Self.tool("/bin/cp", ["-a", run, moved]), 0)
        try complete(moved, files)
        XCTAssertEqual(try weights(moved), expected)
    }

    func testEveryCommandExitsWhenInterruptedAtRandomMoments() throws {
        let files = try prepare()
        let text = directory + "/text.txt"
        try Data(String(repeating: "a small text to train a tokenizer on, and to encode again. ", count: 20_000).utf8)
            .write(to: URL(fileURLWithPath: text))
        let commands: [[String]] = [
            ["tokenizer", "train", "--input", text, "--vocab-size", "400", "--output", directory + "/tok", "--quiet"],
            ["init", "--config", files.config, "--output", directory + "/model", "--force"],
            fresh(directory + "/signalled", files) + ["--steps", "100000"],
        ]
        var generator = SeededGenerator(seed: 5)
        for trial in 0..<24 {
            let arguments = commands[trial % commands.count]
            let started = try LMProcess.start(arguments)
            usleep(UInt32.random(in: 0...300_000, using: &generator))
            if started.process.isRunning { kill(started.process.processIdentifier, SIGINT) }
            let deadline = Date().addingTimeInterval(20)
            while started.process.isRunning, Date() < deadline { usleep(10_000) }
            if started.process.isRunning { kill(started.process.processIdentifier, SIGKILL) }
            let result = LMProcess.finish(started)
            XCTAssertTrue([0, 130].contains(result.status), "trial \(trial), \(arguments[0]): exit \(result.status) \(result.error)")
            try? FileManager.default.removeItem(atPath: directory + "/signalled")
        }
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: directory).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [], "no temporary file outlives its command")
    }
}

extension CrashSafetyTests {
    /// Runs a system tool quietly; its exit status (-1 when it cannot start).
    static func tool(_ path: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardError = Pipe()
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Bytes a folder's files take (rounded up to 4 KiB pages, as tmpfs counts them).
enum CheckpointFolderSize {
    static func bytes(_ folder: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: folder).reduce(0) { total, name in
            let size = (try FileManager.default.attributesOfItem(atPath: folder + "/" + name)[.size] as? Int) ?? 0
            return total + (size + 4095) / 4096 * 4096
        }
    }
}
