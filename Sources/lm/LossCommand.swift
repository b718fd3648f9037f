import ArgumentParser
import Foundation
import Model

struct LossCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "loss",
        abstract: "The mean next-token cross-entropy of token ids, and optionally its gradient for every parameter.",
        discussion: """
        Row b of the ids is a sequence of T+1 tokens: positions 0..<T are the inputs and 1...T the \
        targets. Prints `loss <value>` (nats per token, full precision). With --grads, writes the \
        gradient of that loss for every parameter as float32 safetensors under the checkpoint's \
        tensor names: compare it, tensor by tensor, with PyTorch autograd on the same weights.
        """)

    @Option(help: "The model: a model directory, a llama.cpp .gguf file or a Hugging Face directory (dequantized on load).") var model: String
    @Option(help: "Token ids as NPY, int32, int64, uint16 or int16; shape [T+1] or [B, T+1].") var tokens: String
    @Option(help: "Where to write the gradients (.safetensors).") var grads: String?
    @Option(help: "A LoRA adapter to apply (a PEFT adapter directory); --grads then holds the adapter's gradients.") var adapter: String?
    @OptionGroup var running: ModelRunOptions

    func run() throws {
        try OutputOverInput.refuse(files: [NamedPath("--grads", grads)], inputs: [NamedPath("--model", model), NamedPath("--tokens", tokens)])
        running.apply()
        let file = try TokenIDFile(path: tokens)
        guard file.length >= 2 else {
            throw ModelError("\(tokens): each row needs at least 2 ids (an input and its target), found \(file.length)")
        }
        let lm = try Checkpoint.load(modelAt: model)
        let loraAdapter = try adapter.map { try PEFTAdapter.read(directory: $0, config: lm.config) }
        let (batch, length) = (file.batch, file.length - 1)
        guard length <= lm.config.contextLength else {
            throw ModelError("\(tokens): \(length) input positions per row exceed context_length \(lm.config.contextLength)")
        }
        let inputs = (0..<batch).flatMap { b in file.ids[(b * file.length)..<(b * file.length + length)] }
        let targets = (0..<batch).flatMap { b in file.ids[(b * file.length + 1)..<((b + 1) * file.length)] }
        let session = try TrainingSession(model: lm, batch: batch, length: length, adapter: loraAdapter)
        let loss: Double
        do {
            loss = grads == nil ? try session.loss(inputs: inputs, targets: targets) : try session.computeGradients(inputs: inputs, targets: targets)
        } catch let error as ModelError {
            throw ModelError("\(tokens): \(error.message)")
        }
        if let grads { try Checkpoint.write(session.gradients, layout: session.trainedLayout, to: grads) }
        print("loss \(loss)")
    }
}
