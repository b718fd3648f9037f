import ArgumentParser
import Drawing
import Foundation
import Model
import TensorIO

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
        try OutputOverInput.refuse(files: [NamedPath("--output", output)],
                                   inputs: [NamedPath("--model", input.model), NamedPath("--tokenizer", input.tokenizer)])
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
