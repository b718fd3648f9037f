import ArgumentParser
import Foundation
import Model

/// `lm merge`: a LoRA adapter folded into its model's weights.
struct MergeCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a LoRA adapter into its model: W += (alpha / rank) · B·A, written as a model directory.",
        discussion: """
        The model is decoded to Float32 (a GGUF's blocks too); the result holds the model's \
        tokenizer, stop tokens and chat template, runs without --adapter, and lm quantize and \
        lm export gguf work on it.
        """)

    @Option(help: "The base model: a .gguf file, a Hugging Face directory or one of ours.") var model: String
    @Option(help: "The adapter: a PEFT adapter directory, or an lm train --lora-rank run.") var adapter: String
    @Option(help: "The model directory to write.") var output: String
    @Flag(help: "Replace a model already in --output.") var force = false

    func run() throws {
        try OutputOverInput.refuse(directories: [NamedPath("--output", output)], inputs: [NamedPath("--model", model), NamedPath("--adapter", adapter)])
        try ImportCommand.requireReplaceable(output, force: force)
        let pretrained = try PretrainedModel.load(model)
        let lora = try PEFTAdapter.read(directory: adapter, config: pretrained.model.config)
        try lora.merge(into: pretrained.model)
        try pretrained.save(to: output)
        print("wrote \(output): \(ImportCommand.describe(pretrained.model)) with the rank-\(lora.settings.rank) adapter on \(lora.settings.targets.map(\.rawValue).joined(separator: ",")) merged")
    }
}
