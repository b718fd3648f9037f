import ArgumentParser
import Foundation

/// `lm serve …`: runs the `lm-serve` executable built beside `lm` with the same arguments. The
/// server is its own executable so that `lm` carries no HTTP stack; this keeps one command name.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over OpenAI's API with a web page (runs lm-serve; see `lm-serve --help`).",
        discussion: "Build it first with `swift build -c release --product lm-serve` (or run `swift run -c release lm-serve …`).")

    @Argument(parsing: .allUnrecognized, help: "lm-serve's options, e.g. --model FILE --port 8080.")
    var arguments: [String] = []

    func run() throws {
        let server = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("lm-serve").path
        guard FileManager.default.isExecutableFile(atPath: server) else {
            throw ValidationError("lm serve runs lm-serve, which is not built beside lm (\(server)); build it with `swift build -c release --product lm-serve`")
        }
        let argv = [server] + arguments
        var pointers = argv.map { strdup($0) } + [nil]
        execv(server, &pointers)
        throw ValidationError("cannot run \(server): \(String(cString: strerror(errno)))")
    }
}
