import ArgumentParser
import Model

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Write a randomly initialised model (config.json + model.safetensors) to a directory.")

    @Option(help: "A config.json with vocab_size, context_length, d_model, num_layers, num_heads, d_ff, rope_theta.")
    var config: String

    @Option(help: "The model directory to write.")
    var output: String

    @Option(help: "Seed of the initialisation.")
    var seed: UInt64 = 0

    func run() throws {
        let configuration = try ModelConfig.load(path: config)
        let model = try TransformerLM(config: configuration, seed: seed)
        try Checkpoint.save(model, directory: output)
        print("wrote \(output): \(model.parameterCount) parameters")
    }
}
