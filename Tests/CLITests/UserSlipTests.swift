import Foundation
import TensorIO
import TestSupport
import XCTest

/// The mistakes a new user makes, run as that user runs `lm`: a list with a hole, a data file
/// regenerated while training reads it, more threads than the memory limit allows.
final class UserSlipTests: TemporaryDirectoryTestCase {
    func writeConfig() throws -> String {
        let path = directory + "/config.json"
        let config = #"{"vocab_size": 40, "context_length": 16, "d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 24, "rope_theta": 10000}"#
        try Data(config.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Waits up to `seconds` for `process` to end; kills it and fails if it does not.
    func waitOrKill(_ process: Process, seconds: Double, _ label: String) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        guard process.isRunning else { return true }
        process.terminate()
        usleep(500_000)
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        XCTFail("\(label): still running after \(seconds) s (a hang)")
        return false
    }

    /// `--tokens '1,,2'` (and every other hole or stray element) is refused naming the option
    /// and the element's 1-based position, never dropped.
    func testListsWithHolesAreRefusedNamingThePosition() throws {
        let config = try writeConfig(), model = directory + "/model"
        XCTAssertEqual(try LMProcess.run(["init", "--config", config, "--output", model]).status, 0)
        let cases = [("1,,2", "element 2 of 3 is empty"), ("1,2,", "element 3 of 3 is empty"), (",1", "element 1 of 2 is empty"),
                     ("1, ,2", "element 2 of 3 is empty"), ("", "element 1 of 1 is empty"), ("1,x,2", "element 2 of 3, 'x', is not an integer id"),
                     ("1,2,99999999999", "element 3 of 3, '99999999999', is not an integer id"), ("1;2", "element 1 of 1, '1;2'")]
        for (list, expected) in cases {
            for command in ["attention", "trace"] {
                var arguments = [command, "--model", model, "--tokens", list]
                if command == "attention" { arguments += ["--output", directory + "/a.svg"] }
                let run = try LMProcess.run(arguments)
                XCTAssertNotEqual(run.status, 0, "\(command) --tokens '\(list)'")
                XCTAssertTrue(run.error.contains("--tokens: \(expected)"), "\(command) --tokens '\(list)': \(run.error)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/a.svg"), "nothing drawn")
        let fine = try LMProcess.run(["attention", "--model", model, "--tokens", " 1, 2 ,3", "--output", directory + "/a.svg"])
        XCTAssertEqual(fine.status, 0, fine.error)
    }

    /// The training data truncated while `lm train` reads it (a user regenerating it in place)
    /// ends the run with an error naming the file, not SIGBUS; the last complete checkpoint is
    /// kept and loads.
    func testTrainingDataTruncatedMidRunIsAnErrorAndTheCheckpointStays() throws {
        let config = try writeConfig(), data = directory + "/data.npy", run = directory + "/run"
        var generator = SystemRandomNumberGenerator()
        // 1.6 MB of ids: far more pages than the few the header keeps after the truncation.
        try NPYWriter.write((0..<400_000).map { _ in Int32.random(in: 0..<40, using: &generator) }, shape: [400_000], to: data)
        let started = try LMProcess.start(["train", "--config", config, "--train", data, "--output", run, "--steps", "10000000",
                                           "--batch-size", "4", "--context", "16", "--checkpoint-interval", "5", "--quiet"])
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: run + "/current") && started.process.isRunning && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/current"), "a checkpoint was written")
        XCTAssertEqual(truncate(data, 128), 0, "the header's page only")
        guard waitOrKill(started.process, seconds: 120, "lm train over a truncated file") else { return }
        let result = LMProcess.finish(started)
        XCTAssertNotEqual(result.status, 128 + SIGBUS, "not killed by SIGBUS: \(result.error)")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.error.contains(data) && result.error.contains("shrank"), result.error)
        // The last complete checkpoint is there and runs.
        try NPYWriter.write([Int32]([1, 2, 3]), shape: [3], to: directory + "/ids.npy")
        let logits = try LMProcess.run(["logits", "--model", run, "--tokens", directory + "/ids.npy", "--output", directory + "/logits.npy"])
        XCTAssertEqual(logits.status, 0, logits.error)
    }

    /// `--threads 64` under a 6 GiB address-space limit runs (OpenBLAS gets no more threads than
    /// cores, whose buffers fit), or stops with a message; it never hangs.
    func testManyThreadsUnderAnAddressSpaceLimitDoNotHang() throws {
        let config = try writeConfig(), model = directory + "/model", ids = directory + "/ids.npy"
        XCTAssertEqual(try LMProcess.run(["init", "--config", config, "--output", model]).status, 0)
        try NPYWriter.write([Int32]([1, 2, 3, 4, 5, 6, 7, 8]), shape: [2, 4], to: ids)
        let lm = try builtExecutable("lm")
        for command in [["logits", "--model", model, "--tokens", ids, "--output", directory + "/logits.npy"],
                        ["loss", "--model", model, "--tokens", ids]] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            // The command's words are plain paths and flags: quoted for the shell all the same.
            let words = ([lm] + command + ["--threads", "64"]).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            process.arguments = ["-c", "ulimit -v 6291456 && exec " + words.joined(separator: " ")]
            var environment = ProcessInfo.processInfo.environment
            environment["LM_BLAS_SETTINGS_APPLIED"] = "1"
            process.environment = environment
            // Its messages go to a file: a pipe nobody reads could stall the command.
            let errorPath = directory + "/\(command[0]).stderr"
            XCTAssertTrue(FileManager.default.createFile(atPath: errorPath, contents: nil))
            let errorFile = try XCTUnwrap(FileHandle(forWritingAtPath: errorPath))
            process.standardError = errorFile
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            guard waitOrKill(process, seconds: 180, command[0]) else { continue }
            try errorFile.close()
            let text = String(decoding: FileManager.default.contents(atPath: errorPath) ?? Data(), as: UTF8.self)
            XCTAssertTrue(process.terminationStatus == 0 || !text.isEmpty, "\(command[0]): exit \(process.terminationStatus) without a message")
            XCTAssertEqual(process.terminationStatus, 0, "\(command[0]) --threads 64 under ulimit -v: \(text)")
        }
    }
}
