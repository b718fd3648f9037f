import Foundation
import XCTest

/// The executable `name` that SwiftPM built beside the running test bundle (the `lm` the tests
/// run as a user would), or an XCTSkip saying it was not found.
public func builtExecutable(_ name: String) throws -> String {
    var url = Bundle.main.bundleURL
    for _ in 0..<4 {
        let candidate = url.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        url.deleteLastPathComponent()
    }
    let message = "SKIPPED: the \(name) executable was not found beside the tests (\(Bundle.main.bundleURL.path))"
    print(message)
    throw XCTSkip(message)
}

/// The built `lm`, run as a user runs it.
public enum LMProcess {
    /// A started `lm` (not waited for), its output going to pipes that ``finish(_:)`` reads.
    /// `input`, when given, is written to its standard input, which is then closed.
    public static func start(_ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> (process: Process, output: Pipe, error: Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try builtExecutable("lm"))
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["LM_BLAS_SETTINGS_APPLIED"] = "1"  // no restart: the tests keep the machine's settings
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        let stdin = Pipe()
        if input != nil { process.standardInput = stdin }
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        return (process, output, error)
    }

    /// Waits for a started `lm`: exit status (128 + the signal when a signal ended it), stdout, stderr.
    public static func finish(_ started: (process: Process, output: Pipe, error: Pipe)) -> (status: Int32, output: String, error: String) {
        let out = started.output.fileHandleForReading.readDataToEndOfFile()
        let err = started.error.fileHandleForReading.readDataToEndOfFile()
        started.process.waitUntilExit()
        let status = started.process.terminationReason == .uncaughtSignal ? 128 + started.process.terminationStatus : started.process.terminationStatus
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// Runs `lm` with `arguments` to the end.
    public static func run(_ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> (status: Int32, output: String, error: String) {
        finish(try start(arguments, environment: environment, input: input))
    }
}
