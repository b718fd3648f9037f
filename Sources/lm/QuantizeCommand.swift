import ArgumentParser
import Foundation
import Kernels
import Model

/// The block formats `lm quantize` and `lm export gguf` write.
enum BlockType: String, ExpressibleByArgument, CaseIterable {
    case q8_0, q4_0, q4_1, q5_0, q5_1

    var format: QuantizedMatrix.Format {
        switch self {
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        }
    }
}

/// `lm quantize --model M --type q4_1 --output DIR`.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Write a model with its matrices in one of ggml's block formats (a model directory holding model.gguf).",
        discussion: """
        Every matrix is rounded block by block with ggml's reference rules; the head (the embedding \
        when tied) gets Q8_0 under the 4- and 5-bit types, as llama.cpp gives it more bits; norm \
        weights stay float32. The directory keeps the tokenizer, stop tokens and chat template, and \
        every lm command that takes --model runs it with the blocks kept quantized.
        """)

    @Option(help: "The model to quantize: a model directory, a Hugging Face directory or a .gguf file (decoded first).") var model: String
    @Option(help: "The block format: \(BlockType.allCases.map(\.rawValue).joined(separator: ", ")).") var type: BlockType
    @Option(help: "The model directory to write.") var output: String
    @Flag(help: "Replace a model already in --output.") var force = false

    func run() throws {
        try OutputOverInput.refuse(directories: [NamedPath("--output", output)], inputs: [NamedPath("--model", model)])
        for existing in [Checkpoint.weightsFile, Checkpoint.quantizedWeightsFile] {
            let path = (output as NSString).appendingPathComponent(existing)
            if !force && FileManager.default.fileExists(atPath: path) {
                throw ModelError("\(path) exists: lm quantize would replace that model; pass --force to do so")
            }
        }
        let pretrained = try PretrainedModel.load(model)
        try pretrained.save(to: output, storage: .quantized(type.format))
        let weights = (output as NSString).appendingPathComponent(Checkpoint.quantizedWeightsFile)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: weights)[.size] as? Int) ?? 0
        print(String(format: "wrote %@: %@ in %@, %.1f MB (float32: %.1f MB)", output, ImportCommand.describe(pretrained.model),
                     type.rawValue.uppercased(), Double(bytes) / 1e6, Double(4 * pretrained.model.parameterCount) / 1e6))
    }
}

/// `lm export gguf --model M --output FILE.gguf [--type q8_0]`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a model in another project's format.", subcommands: [GGUFExportCommand.self, GGUFLoRAExportCommand.self])
}

struct GGUFExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gguf",
        abstract: "Write a model as a llama.cpp GGUF file (its family's architecture: llama, qwen2, qwen3 or gemma3; the tokenizer as a gpt2 byte-level BPE or a llama SentencePiece vocabulary).",
        discussion: """
        The file holds the hyperparameters, the weights (float32 unless --type is given), the \
        tokenizer with its pre-tokenizer, BOS/EOS and chat template: llama.cpp's tools run it as \
        they run a downloaded model, and every lm command reads it back.
        """)

    @Option(help: "The model: a model directory, a Hugging Face directory or a .gguf file.") var model: String
    @Option(help: "The .gguf file to write.") var output: String
    @Option(help: "Block format of the matrices (\(BlockType.allCases.map(\.rawValue).joined(separator: ", "))); float32 when absent.") var type: BlockType?
    @Flag(help: "Replace --output if it exists.") var force = false

    func run() throws {
        guard output.hasSuffix(".gguf") else { throw ValidationError("--output must name a .gguf file, not '\(output)'") }
        try OutputOverInput.refuse(files: [NamedPath("--output", output)], inputs: [NamedPath("--model", model)])
        if !force && FileManager.default.fileExists(atPath: output) {
            throw ModelError("\(output) exists: pass --force to replace it")
        }
        let pretrained = try PretrainedModel.load(model)
        try GGUFExport.write(pretrained, storage: type.map { .quantized($0.format) } ?? .float32, to: output)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        print(String(format: "wrote %@: %@, %@, %.1f MB", output, ImportCommand.describe(pretrained.model),
                     type?.rawValue.uppercased() ?? "F32", Double(bytes) / 1e6))
    }
}

/// `lm export gguf-lora`: a LoRA adapter as llama.cpp's adapter file.
struct GGUFLoRAExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gguf-lora",
        abstract: "Write a LoRA adapter as a llama.cpp adapter GGUF (general.type adapter, adapter.type lora), for llama.cpp's --lora.",
        discussion: "--model names the base the adapter was trained on: the adapter is checked against it and the file takes its architecture.")

    @Option(help: "The base model: a .gguf file, a Hugging Face directory or one of ours.") var model: String
    @Option(help: "The adapter: a PEFT adapter directory, or an lm train --lora-rank run.") var adapter: String
    @Option(help: "The .gguf file to write.") var output: String
    @Flag(help: "Replace --output if it exists.") var force = false

    func run() throws {
        guard output.hasSuffix(".gguf") else { throw ValidationError("--output must name a .gguf file, not '\(output)'") }
        try OutputOverInput.refuse(files: [NamedPath("--output", output)], inputs: [NamedPath("--model", model), NamedPath("--adapter", adapter)])
        if !force && FileManager.default.fileExists(atPath: output) { throw ModelError("\(output) exists: pass --force to replace it") }
        let base = try PretrainedModel.load(model, keepQuantized: true)
        let lora = try PEFTAdapter.read(directory: adapter, config: base.model.config)
        try GGUFExport.writeAdapter(lora, to: output, name: (adapter as NSString).lastPathComponent)
        print("wrote \(output): rank \(lora.settings.rank), alpha \(lora.settings.alpha), \(lora.layout.entries.count) tensors")
    }
}
