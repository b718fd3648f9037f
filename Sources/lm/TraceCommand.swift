import ArgumentParser
import Drawing
import Foundation
import Model
import Tokenizer

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
