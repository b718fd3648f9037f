import ArgumentParser
import Drawing
import Foundation
import Model
import TensorIO
import Tokenizer

/// What `lm trace`, `lm attention`, `lm lens` and `lm attribute` run on: a model, and the ids of
/// a prompt with a printable label for each.
struct InspectionInput: ParsableArguments {
    @Option(help: "A model directory (config.json, model.safetensors, tokenizer files), a .gguf file or a Hugging Face directory.") var model: String
    @Option(help: "Text to run, encoded with the model's tokenizer (or --tokenizer).") var prompt: String?
    @Option(help: "Token ids instead of text, comma-separated (for a model without a tokenizer).") var tokens: String?
    @Option(help: "A tokenizer directory to use instead of the model's.") var tokenizer: String?

    func validate() throws {
        guard (prompt == nil) != (tokens == nil) else { throw ValidationError("give exactly one of --prompt and --tokens") }
        if let tokens { _ = try Self.ids(tokens) }
    }

    /// `--tokens` read as ids: every element an integer in Int32's range.
    static func ids(_ tokens: String) throws -> [Int32] {
        try CommaSeparatedList.parse(tokens, option: "--tokens", kind: "an integer id") { Int32($0) }
    }

    /// The model, the ids and their labels; errors name what is missing or out of range.
    func load(writing output: String? = nil) throws -> (model: TransformerLM, ids: [Int32], labels: [String]) {
        let (loaded, ids) = try open(writing: output)
        return (loaded.model, ids, ids.map(loaded.label))
    }

    /// The same, with the tokenizer kept for naming tokens. An `--output` to be written is refused
    /// first if it names the model or the tokenizer.
    func open(writing output: String? = nil) throws -> (loaded: LoadedForInspection, ids: [Int32]) {
        if let output {
            try OutputOverInput.refuse(files: [NamedPath("--output", output)],
                                       inputs: [NamedPath("--model", model), NamedPath("--tokenizer", tokenizer)])
        }
        let loaded = try LoadedForInspection(model: model, tokenizer: tokenizer)
        let ids = try tokens.map(Self.ids) ?? loaded.ids(prompt ?? "", option: "--prompt")
        try loaded.check(ids, option: tokens == nil ? "--prompt" : "--tokens")
        return (loaded, ids)
    }
}

/// A model opened for inspection, with the tokenizer that names its tokens.
struct LoadedForInspection {
    let model: TransformerLM
    let tokenizer: (any TextTokenizer)?
    let path: String

    init(model path: String, tokenizer directory: String?) throws {
        model = try Checkpoint.load(modelAt: path)
        tokenizer = try directory.map { directory in
            guard let loaded = try TokenizerDirectory.loadAny(directory) else { throw ModelError("\(directory): no tokenizer files") }
            return loaded
        } ?? TokenizerDirectory.loadAny(path)
        self.path = path
    }

    /// `text` encoded as a prompt; `option` names where it came from.
    func ids(_ text: String, option: String) throws -> [Int32] {
        guard let tokenizer else {
            throw ModelError("\(path): no tokenizer files to encode \(option) with; pass --tokenizer DIR, or --tokens IDS where the command takes ids")
        }
        return tokenizer.encodePrompt(text)
    }

    /// Refuses an empty prompt, one past the context, or an id outside the vocabulary.
    func check(_ ids: [Int32], option: String) throws {
        guard !ids.isEmpty else { throw ValidationError("\(option) gives no tokens") }
        guard ids.count <= model.config.contextLength else {
            throw ValidationError("\(option) gives \(ids.count) tokens; the model's context holds \(model.config.contextLength)")
        }
        if let bad = model.config.firstInvalidToken(in: ids) {
            throw ModelError("\(option): token \(bad.index): id \(bad.id) is outside the model's vocabulary (0..<\(model.config.vocabSize))")
        }
    }

    /// A token's text, printable, or `#id` without a tokenizer.
    func label(_ id: Int32) -> String {
        guard let tokenizer, Int(id) < tokenizer.vocabularySize, let bytes = try? tokenizer.pieceBytes(id, after: nil) else { return "#\(id)" }
        return AttentionMap.label(bytes)
    }

    /// The one token `text` encodes to (for naming an answer), or an error saying what it splits into.
    func token(_ text: String, option: String) throws -> Int32 {
        guard let tokenizer else { throw ValidationError("\(option) needs the model's tokenizer; give a token id instead") }
        let ids = tokenizer.encodeChat(text, bos: "", eos: "")
        guard ids.count == 1 else {
            throw ValidationError("\(option) '\(text)' is \(ids.count) tokens (\(ids.map(label).joined(separator: " | "))); give one token, e.g. with its leading space, or its id")
        }
        return ids[0]
    }
}
