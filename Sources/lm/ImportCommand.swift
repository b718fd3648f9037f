import ArgumentParser
import Foundation
import Model
import TensorIO
import Tokenizer

/// `lm import`: models from other projects, written as our model directories.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Convert a model from another project into a model directory.",
        subcommands: [Llama2cImport.self, GGUFImport.self, HuggingFaceImport.self])

    /// Stops unless `output` holds no model, or `force` allows replacing it.
    static func requireReplaceable(_ output: String, force: Bool) throws {
        let existing = (output as NSString).appendingPathComponent(Checkpoint.weightsFile)
        if !force && FileManager.default.fileExists(atPath: existing) {
            throw ModelError("\(existing) exists: lm import would replace that model; pass --force to do so")
        }
    }

    /// "N parameters (d_model …, … layers, …)": what an import wrote.
    static func describe(_ model: TransformerLM) -> String {
        let c = model.config
        return "\(model.parameterCount) parameters (d_model \(c.dModel), \(c.numLayers) layers, \(c.numHeads) heads over \(c.numKVHeads) KV heads, d_ff \(c.dFF), vocab \(c.vocabSize), context \(c.contextLength))"
    }
}

/// `lm import gguf --model FILE.gguf --output DIR`.
struct GGUFImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gguf",
        abstract: "Import a llama.cpp GGUF file (architecture llama, qwen2, qwen3 or gemma3) as a model directory (weights dequantized to float32).",
        discussion: PretrainedImport.discussion)

    @OptionGroup var options: PretrainedImport
    func run() throws { try options.run() }
}

/// `lm import hf --model DIR --output DIR`.
struct HuggingFaceImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hf",
        abstract: "Import a Hugging Face LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM or Gemma3ForCausalLM directory as a model directory (weights as float32; Llama's q/k permuted for our RoPE).",
        discussion: PretrainedImport.discussion)

    @OptionGroup var options: PretrainedImport
    func run() throws { try options.run() }
}

/// What both imports take and do.
struct PretrainedImport: ParsableArguments {
    static let discussion = """
        Writes config.json and model.safetensors under our tensor names (a tied head is written as \
        its own lm_head copy of the embedding), the tokenizer with its pre-tokenizer rules, the stop \
        tokens, the BOS/EOS texts and the chat template, so that lm train --model fine-tunes it and \
        lm generate and lm chat run it as before.
        """

    @Option(help: "The .gguf file or Hugging Face directory.") var model: String
    @Option(help: "The model directory to write.") var output: String
    @Flag(help: "Replace a model already in --output.") var force = false

    func run() throws {
        try OutputOverInput.refuse(directories: [NamedPath("--output", output)], inputs: [NamedPath("--model", model)])
        try ImportCommand.requireReplaceable(output, force: force)
        let pretrained = try PretrainedModel.load(model)
        try pretrained.save(to: output)
        let tokenizer = pretrained.tokenizer.map { "\($0.vocabularySize)-token tokenizer" } ?? "no tokenizer"
        print("wrote \(output): \(ImportCommand.describe(pretrained.model)), \(tokenizer)\(pretrained.chatTemplate == nil ? "" : ", chat template")")
    }
}

/// `lm import llama2c --checkpoint MODEL.bin [--tokenizer tokenizer.bin] --output DIR`.
struct Llama2cImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llama2c",
        abstract: "Import a karpathy/llama2.c checkpoint (legacy, version 1 float32 or version 2 Q8_0) and its tokenizer.",
        discussion: """
        Writes config.json, model.safetensors (our tensor names; Q8_0 weights dequantized to float32) \
        and, with --tokenizer, tokenizer.bin, which every lm command reads. A shared classifier is \
        written as its own lm_head copy of the embedding.
        """)

    @Option(help: "The llama2.c model file (e.g. stories15M.bin).") var checkpoint: String
    @Option(help: "llama2.c's tokenizer.bin; its piece count must equal the model's vocab_size.") var tokenizer: String?
    @Option(help: "The model directory to write.") var output: String
    @Flag(help: "Replace a model already in --output.") var force = false

    func run() throws {
        try OutputOverInput.refuse(directories: [NamedPath("--output", output)],
                                   inputs: [NamedPath("--checkpoint", checkpoint), NamedPath("--tokenizer", tokenizer)])
        try ImportCommand.requireReplaceable(output, force: force)
        let model = try Llama2cCheckpoint.load(path: checkpoint)
        // Read and check the tokenizer before anything is written.
        let pieces = try tokenizer.map { try SentencePieceTokenizer(path: $0) }
        if let pieces, let tokenizer, pieces.vocabularySize != model.config.vocabSize {
            throw ModelError("\(tokenizer): \(pieces.vocabularySize) pieces, but \(checkpoint) has vocab_size \(model.config.vocabSize); this tokenizer belongs to another model")
        }
        try Checkpoint.save(model, directory: output)
        if let pieces {
            let path = (output as NSString).appendingPathComponent(TokenizerDirectory.sentencePieceFile)
            do { try AtomicFile.write(pieces.fileData(), to: path) } catch { throw ModelError("\(error)") }
        }
        print("wrote \(output): \(ImportCommand.describe(model))\(pieces == nil ? "" : " + tokenizer.bin")")
    }
}
