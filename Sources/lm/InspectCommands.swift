import ArgumentParser
import Foundation
import Model
import TensorIO
import Tokenizer

/// What `lm trace` and `lm attention` run on: a model, and the ids of a prompt with a printable
/// label for each.
struct InspectionInput: ParsableArguments {
    @Option(help: "The model directory (config.json, model.safetensors, tokenizer files).") var model: String
    @Option(help: "Text to run, encoded with the model's tokenizer (or --tokenizer).") var prompt: String?
    @Option(help: "Token ids instead of text, comma-separated (for a model without a tokenizer).") var tokens: String?
    @Option(help: "A tokenizer directory to use instead of the model's.") var tokenizer: String?

    func validate() throws {
        guard (prompt == nil) != (tokens == nil) else { throw ValidationError("give exactly one of --prompt and --tokens") }
        if let tokens, tokens.split(separator: ",").contains(where: { Int32($0.trimmingCharacters(in: .whitespaces)) == nil }) {
            throw ValidationError("--tokens must be comma-separated integers, got '\(tokens)'")
        }
    }

    /// The model, the ids and their labels; errors name what is missing or out of range.
    func load() throws -> (model: TransformerLM, ids: [Int32], labels: [String]) {
        let lm = try Checkpoint.load(directory: model)
        let text: (any TextTokenizer)? = try tokenizer.map { directory in
            guard let loaded = try TokenizerDirectory.loadAny(directory) else { throw ModelError("\(directory): no tokenizer files") }
            return loaded
        } ?? TokenizerDirectory.loadAny(model)
        let ids: [Int32]
        if let tokens {
            ids = tokens.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces))! }
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

/// `lm trace`: one forward pass, stage by stage.
struct TraceCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Run one forward pass and show every stage: ids, each tensor's shape and statistics, the next-token prediction.")

    @OptionGroup var input: InspectionInput
    @Option(help: "How many next-token candidates to list.") var top = 10
    @OptionGroup var threading: ThreadOptions

    func validate() throws { if top < 1 { throw ValidationError("--top must be at least 1, got \(top)") } }

    func run() throws {
        threading.apply()
        let (model, ids, labels) = try input.load()
        let trace = try model.trace(tokens: ids)
        let c = model.config
        print("model: d_model \(c.dModel), \(c.numLayers) layers, \(c.numHeads) heads (\(c.numKVHeads) KV), d_ff \(c.dFF), vocab \(c.vocabSize)")
        print("tokens (\(ids.count)): " + zip(ids, labels).map { "\($0)'\($1)'" }.joined(separator: " "))
        print()
        let nameWidth = max(5, trace.stages.map(\.name.count).max() ?? 0)
        func padded(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        print(padded("stage", nameWidth) + "  " + padded("shape", 14) + "      mean       rms       min       max")
        for stage in trace.stages {
            let shape = "[" + stage.shape.map(String.init).joined(separator: ", ") + "]"
            print(padded(stage.name, nameWidth) + "  " + padded(shape, 14)
                  + String(format: " %9.4f %9.4f %9.4f %9.4f", stage.mean, stage.rms, stage.min, stage.max))
        }
        print()
        print("next token after '\(labels.last ?? "")':")
        let text = try input.tokenizer.map { try TokenizerDirectory.loadAny($0) } ?? TokenizerDirectory.loadAny(input.model)
        let ranked = trace.nextTokenProbabilities.enumerated().sorted { $0.element > $1.element }.prefix(top)
        for (id, probability) in ranked {
            let label = text.flatMap { t in Int(id) < t.vocabularySize ? (try? t.pieceBytes(Int32(id), after: nil)).map(AttentionMap.label) : nil } ?? "#\(id)"
            print(String(format: "  %6.2f%%  %6d  '%@'", 100 * probability, id, label))
        }
    }
}

/// `lm attention`: attention weights as SVG heat maps.
struct AttentionCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Draw a layer's attention weights as SVG heat maps (one head, or every head of the layer).")

    @OptionGroup var input: InspectionInput
    @Option(help: "Layer (0-based).") var layer = 0
    @Option(help: "Head (0-based); without it, every head of the layer in a grid.") var head: Int?
    @Option(help: "The SVG file to write.") var output: String
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        threading.apply()
        let (model, ids, labels) = try input.load()
        let c = model.config
        guard (0..<c.numLayers).contains(layer) else { throw ValidationError("--layer \(layer) does not exist (layers 0..<\(c.numLayers))") }
        if let head, !(0..<c.numHeads).contains(head) { throw ValidationError("--head \(head) does not exist (heads 0..<\(c.numHeads))") }
        let trace = try model.trace(tokens: ids)
        let heads = head.map { [$0] } ?? Array(0..<c.numHeads)
        let svg = AttentionMap.svg(weights: heads.map { trace.attention[layer][$0] }, labels: labels,
                                   titles: heads.map { "layer \(layer), head \($0)" },
                                   caption: "\(input.model): attention over \(ids.count) tokens (rows: queries, columns: keys)")
        do { try AtomicFile.write(Data(svg.utf8), to: output) } catch { throw ModelError("\(error)") }
        print("wrote \(output): \(heads.count) head\(heads.count == 1 ? "" : "s") × \(ids.count)×\(ids.count) cells")
    }
}
