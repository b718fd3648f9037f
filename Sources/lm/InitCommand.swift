import ArgumentParser
import Foundation
import Model
import Tokenizer

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Write a randomly initialised model (config.json + model.safetensors) to a directory.")

    @Option(help: "A config.json with vocab_size, context_length, d_model, num_layers, num_heads, d_ff, rope_theta.")
    var config: String

    @Option(help: "The model directory to write.")
    var output: String

    @Option(help: "Seed of the initialisation.")
    var seed: UInt64 = 0

    @Option(help: "A tokenizer directory to store with the model (its vocabulary must fit vocab_size).")
    var tokenizer: String?

    @Flag(help: "Replace the weights of a model already in --output.")
    var force = false

    func run() throws {
        try OutputOverInput.refuse(directories: [NamedPath("--output", output)],
                                   inputs: [NamedPath("--config", config), NamedPath("--tokenizer", tokenizer)])
        let existing = (output as NSString).appendingPathComponent(Checkpoint.weightsFile)
        if !force && FileManager.default.fileExists(atPath: existing) {
            throw ModelError("\(existing) exists: lm init would replace that model's weights; pass --force to do so")
        }
        let configuration = try ModelConfig.load(path: config)
        let loadedTokenizer = try tokenizer.map { try TokenizerDirectory.load($0) }
        if let loadedTokenizer { try configuration.requireFits(loadedTokenizer, source: config) }
        let model = try TransformerLM(config: configuration, seed: seed)
        try Checkpoint.save(model, directory: output)
        if let loadedTokenizer { try TokenizerDirectory.save(loadedTokenizer, to: output) }
        print("wrote \(output): \(model.parameterCount) parameters")
    }
}
