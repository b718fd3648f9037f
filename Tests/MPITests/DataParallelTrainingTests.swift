import Foundation
import TensorIO
import TestSupport
import XCTest

#if MPI
/// `mpirun -np 2 lm train` run as a user runs it, against one process with the whole batch:
/// the same weights (to float rounding), with and without optimizer-state sharding; resuming
/// with another rank count; a fault on one rank stops both and keeps the last checkpoint.
///
/// Tolerance: two ranks sum their rows' gradients in another order than one process does, so
/// weights differ by rounding: after 12 steps, by at most 2e-5 of each tensor's largest magnitude
/// (measured: 2e-6 after 20 steps). A run with another seed differs by far more, which the test
/// also checks, so the comparison can fail.
final class DataParallelTrainingTests: XCTestCase {
    var directory = ""
    static let tolerance: Float = 2e-5

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpi-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = #"{"vocab_size": 64, "context_length": 16, "d_model": 32, "num_layers": 2, "num_heads": 4, "d_ff": 64, "rope_theta": 10000}"#
        try Data(config.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        var state: UInt64 = 1
        let ids = (0..<6000).map { i -> Int32 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (state >> 60) == 0 ? Int32((state >> 33) % 64) : Int32((i * 5 + i / 7) % 64)
        }
        try NPYWriter.write(ids, shape: [ids.count], to: directory + "/ids.npy")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func testTwoRanksFollowOneProcessWithTheWholeBatch() throws {
        try train(ranks: 1, output: "one")
        try train(ranks: 2, output: "two")
        // Buckets of 1,000 values: the exchanges run in many rounds of uneven pieces.
        try train(ranks: 2, output: "sharded", extra: ["--shard-optimizer"], environment: ["LM_MPI_BUCKET_ELEMENTS": "1000"])
        let one = try weights("one"), two = try weights("two"), sharded = try weights("sharded")
        let initial = try weightsOfFreshModel()
        XCTAssertGreaterThan(largestDifference(one, initial), 100 * Self.tolerance, "training moved the weights")
        XCTAssertLessThanOrEqual(largestDifference(one, two), Self.tolerance, "2 ranks × 4 rows = 1 process × 8 rows")
        XCTAssertLessThanOrEqual(largestDifference(one, sharded), Self.tolerance, "with the AdamW moments sharded too")
        XCTAssertLessThanOrEqual(largestDifference(try weights("one", file: "optimizer.safetensors"), try weights("sharded", file: "optimizer.safetensors")),
                                 Self.tolerance, "the sharded moments, gathered into the checkpoint")
        try train(ranks: 1, output: "other-seed", extra: ["--seed", "8"])
        XCTAssertGreaterThan(largestDifference(one, try weights("other-seed")), 100 * Self.tolerance, "the comparison can fail")
        let losses = try validationLosses("one"), twoLosses = try validationLosses("two")
        XCTAssertEqual(losses.count, 3)
        for (a, b) in zip(losses, twoLosses) { XCTAssertEqual(a, b, accuracy: 1e-5 * a, "validation loss, split over the ranks") }
    }

    func testResumingOnAnotherRankCount() throws {
        try train(ranks: 1, output: "whole")
        let half = ["--steps", "6", "--cosine-steps", "12"]
        try train(ranks: 2, output: "two-then-one", extra: half + ["--shard-optimizer"])
        try lmResult(ranks: 1, ["train", "--resume", directory + "/two-then-one", "--steps", "12", "--quiet"]).expectSuccess()
        try train(ranks: 1, output: "one-then-two", extra: half)
        try lmResult(ranks: 2, ["train", "--resume", directory + "/one-then-two", "--steps", "12", "--quiet", "--shard-optimizer"]).expectSuccess()
        let whole = try weights("whole")
        XCTAssertLessThanOrEqual(largestDifference(whole, try weights("two-then-one")), Self.tolerance)
        XCTAssertLessThanOrEqual(largestDifference(whole, try weights("one-then-two")), Self.tolerance)
    }

    func testAFaultOnOneRankStopsBothAndKeepsTheLastCheckpoint() throws {
        for (fault, message) in [("nan@1:7", "the training loss on rank 1 of 2 is nan"), ("drift@1:7", "the weights of rank 1 differ from rank 0's"),
                                 ("kill@1:7", nil), ("error@1:7", "rank 1 of 2: an error injected on rank 1 after step 7")] {
            let output = "fault-" + fault.prefix(while: { $0 != "@" })
            let result = try lmResult(ranks: 2, arguments(output: output), environment: ["LM_FAULT_INJECTION": fault])
            XCTAssertNotEqual(result.status, 0, fault)
            if let message { XCTAssertTrue(result.error.contains(message), "\(fault): \(result.error)") }
            let state = try String(contentsOfFile: directory + "/\(output)/training_state.json", encoding: .utf8)
            XCTAssertTrue(state.contains("\"step\" : 5"), "\(fault): the checkpoint of step 5 stays: \(state)")
            // …and the run continues from it on one process.
            try lmResult(ranks: 1, ["train", "--resume", directory + "/" + output, "--quiet"]).expectSuccess()
        }
    }

    func testABatchThatDoesNotSplitOverTheRanksIsRefused() throws {
        let result = try lmResult(ranks: 2, arguments(output: "odd") + ["--batch-size", "7"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.error.contains("batch size 7 does not split evenly over 2 ranks"), result.error)
    }

    // MARK: - Running lm

    func arguments(output: String) -> [String] {
        ["train", "--config", directory + "/config.json", "--train", directory + "/ids.npy", "--output", directory + "/" + output,
         "--steps", "12", "--batch-size", "8", "--context", "16", "--eval-interval", "4", "--eval-batches", "2",
         "--checkpoint-interval", "5", "--seed", "3", "--warmup", "2", "--quiet"]
    }

    func train(ranks: Int, output: String, extra: [String] = [], environment: [String: String] = [:]) throws {
        try lmResult(ranks: ranks, arguments(output: output) + extra, environment: environment).expectSuccess()
    }

    struct Result {
        let status: Int32
        let error: String
        func expectSuccess(file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(status, 0, error, file: file, line: line)
        }
    }

    /// `lm arguments` as one process, or as `ranks` processes under mpirun; fails after 3 minutes
    /// rather than hang.
    func lmResult(ranks: Int, _ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let lm = try executable()
        let process = Process()
        var env = ProcessInfo.processInfo.environment
        env["LM_BLAS_SETTINGS_APPLIED"] = "1"
        env["LM_THREADS"] = "1"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if ranks == 1 {
            process.executableURL = URL(fileURLWithPath: lm)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: try mpirun())
            var launch = ["--oversubscribe", "-np", String(ranks)]
            if getuid() == 0 { launch.append("--allow-run-as-root") }
            for key in ["LM_BLAS_SETTINGS_APPLIED", "LM_THREADS"] + environment.keys.sorted() { launch += ["-x", key] }
            process.arguments = launch + [lm] + arguments
        }
        let error = Pipe()
        process.standardError = error
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 180, execute: watchdog)
        let text = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        watchdog.cancel()
        return Result(status: process.terminationStatus, error: text)
    }

    func mpirun() throws -> String {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        if let path = paths.map({ $0 + "/mpirun" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return path }
        let message = "SKIPPED: mpirun is not installed (scripts/setup.sh --mpi installs Open MPI)"
        print(message)
        throw XCTSkip(message)
    }

    /// The `lm` SwiftPM built beside this test bundle.
    func executable() throws -> String { try builtExecutable("lm") }

    // MARK: - Comparing runs

    func weights(_ run: String, file: String = "model.safetensors") throws -> [String: [Float]] {
        let tensors = try SafeTensorsFile(path: directory + "/\(run)/" + file)
        return try Dictionary(uniqueKeysWithValues: tensors.entries.map { ($0.name, try tensors.floats($0.name)) })
    }

    func weightsOfFreshModel() throws -> [String: [Float]] {
        try lmResult(ranks: 1, ["init", "--config", directory + "/config.json", "--seed", "3", "--output", directory + "/fresh"]).expectSuccess()
        return try weights("fresh")
    }

    /// The largest difference between two sets of tensors, each relative to its tensor's largest magnitude.
    func largestDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst: Float = 0
        for (name, x) in a {
            guard let y = b[name], x.count == y.count else { XCTFail("\(name) missing or reshaped"); return .infinity }
            let scale = max(x.map(abs).max() ?? 0, 1e-30)
            worst = max(worst, (zip(x, y).map { abs($0 - $1) }.max() ?? 0) / scale)
        }
        return worst
    }

    func validationLosses(_ run: String) throws -> [Double] {
        let text = try String(contentsOfFile: directory + "/\(run)/metrics.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").compactMap { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return object?["val_loss"] as? Double
        }
    }
}
#else
/// Without the MPI trait there is no data-parallel `lm` to run.
final class DataParallelTrainingTests: XCTestCase {
    func testNeedsTheMPITrait() throws {
        let message = "SKIPPED: built without the MPI trait; run scripts/setup.sh --mpi && swift test --traits MPI --filter MPITests"
        print(message)
        throw XCTSkip(message)
    }
}
#endif
