import ArgumentParser

@main
struct LM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Build, run and inspect Transformer language models on the CPU.",
        subcommands: [])
}
