import ArgumentParser
import Drawing
import Foundation
import Model
import TensorIO
import Tokenizer

/// What `lm trace` and `lm attention` run on: a model, and the ids of a prompt with a printable
/// label for each.
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
    func load() throws -> (model: TransformerLM, ids: [Int32], labels: [String]) {
        let lm = try Checkpoint.load(modelAt: model)
        let text: (any TextTokenizer)? = try tokenizer.map { directory in
            guard let loaded = try TokenizerDirectory.loadAny(directory) else { throw ModelError("\(directory): no tokenizer files") }
            return loaded
        } ?? TokenizerDirectory.loadAny(model)
        let ids: [Int32]
        if let tokens {
            ids = try Self.ids(tokens)
        } else {
            guard let text else {
                throw ModelError("\(model): no tokenizer files to encode --prompt with; pass --tokenizer DIR or --tokens IDS")
            }
            ids = text.encodePrompt(prompt ?? "")
        }
        guard !ids.isEmpty else { throw ValidationError("the prompt gives no tokens") }
        guard ids.count <= lm.config.contextLength else {
            throw ValidationError("the prompt gives \(ids.count) tokens; the model's context holds \(lm.config.contextLength)")
        }
        if let bad = lm.config.firstInvalidToken(in: ids) {
            throw ModelError("token \(bad.index): id \(bad.id) is outside the model's vocabulary (0..<\(lm.config.vocabSize))")
        }
        let labels = ids.map { id -> String in
            guard let text, Int(id) < text.vocabularySize, let bytes = try? text.pieceBytes(id, after: nil) else { return "#\(id)" }
            return AttentionMap.label(bytes)
        }
        return (lm, ids, labels)
    }
}
