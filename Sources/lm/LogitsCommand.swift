import ArgumentParser
import Model
import TensorIO

struct LogitsCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "logits", abstract: "Run the model on token ids and write the logits as float32 NPY [B, T, vocab].")

    @Option(help: "The model: a model directory, a llama.cpp .gguf file or a Hugging Face directory (dequantized on load).")
    var model: String

    @Option(help: "Token ids as NPY, int32, int64, uint16 or int16; shape [T] or [B, T].")
    var tokens: String

    @Option(help: "Where to write the logits (.npy).")
    var output: String

    @Option(help: "A LoRA adapter to apply, unmerged (a PEFT adapter directory).") var adapter: String?
    @OptionGroup var running: ModelRunOptions

    func run() throws {
        try OutputOverInput.refuse(files: [NamedPath("--output", output)], inputs: [NamedPath("--model", model), NamedPath("--tokens", tokens)])
        running.apply()
        let file = try TokenIDFile(path: tokens)
        let (batch, length) = (file.batch, file.length)
        let lm = try Checkpoint.load(modelAt: model)
        if let adapter { try PEFTAdapter.apply(directory: adapter, to: lm) }
        let logits: [Float]
        do {
            logits = try lm.forward(tokens: file.ids, batch: batch, length: length)
        } catch let error as ModelError {
            throw ModelError("\(tokens): \(error.message)")
        }
        try NPYWriter.write(logits, shape: [batch, length, lm.config.vocabSize], to: output)
    }
}
