import ArgumentParser
import Drawing
import Foundation
import Model
import TensorIO

/// `lm attention`: attention weights as SVG heat maps.
struct AttentionCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Draw a layer's attention weights as SVG heat maps (one head, every head of a layer, or every head of every layer).",
        discussion: """
            Each panel's title gives the head's entropy (bits: how spread its attention is) and its             mean attended distance (positions: how far back it looks). --all-layers draws every             layer × head as thumbnails (a sliding-window layer shows as a band) and prints the two             numbers for every head.
            """)

    @OptionGroup var input: InspectionInput
    @Option(help: "Layer (0-based).") var layer = 0
    @Flag(help: "Every head of every layer, as thumbnails, with a table of their statistics.") var allLayers = false
    @Option(help: "Head (0-based); without it, every head of the layer in a grid.") var head: Int?
    @Option(help: "The SVG file to write.") var output: String
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        threading.apply()
        let (model, ids, labels) = try input.load(writing: output)
        let c = model.config
        guard (0..<c.numLayers).contains(layer) else { throw ValidationError("--layer \(layer) does not exist (layers 0..<\(c.numLayers))") }
        if let head, !(0..<c.numHeads).contains(head) { throw ValidationError("--head \(head) does not exist (heads 0..<\(c.numHeads))") }
        let trace = try model.trace(tokens: ids)
        let panels: [(layer: Int, head: Int)] = allLayers
            ? (0..<c.numLayers).flatMap { layer in (0..<c.numHeads).map { (layer, $0) } }
            : (head.map { [$0] } ?? Array(0..<c.numHeads)).map { (layer, $0) }
        let statistics = panels.map { AttentionStatistics(weights: trace.attention[$0.layer][$0.head], length: ids.count) }
        let titles = zip(panels, statistics).map { panel, numbers in
            String(format: "L%d H%d · %.1f bits · %.1f back", panel.layer, panel.head, numbers.entropy, numbers.meanDistance)
        }
        let svg = AttentionMap.svg(weights: panels.map { trace.attention[$0.layer][$0.head] }, labels: allLayers ? [String](repeating: "", count: ids.count) : labels,
                                   titles: titles, caption: "\(input.model): attention over \(ids.count) tokens (rows: queries, columns: keys)",
                                   columns: allLayers ? c.numHeads : nil)
        do { try AtomicFile.write(Data(svg.utf8), to: output) } catch { throw ModelError("\(error)") }
        if allLayers {
            var table = [["layer"] + (0..<c.numHeads).map { "head \($0) bits/back" }]
            for layer in 0..<c.numLayers {
                table.append(["\(layer)"] + (0..<c.numHeads).map { head in
                    let numbers = statistics[layer * c.numHeads + head]
                    return String(format: "%.2f / %.1f", numbers.entropy, numbers.meanDistance)
                })
            }
            print(TextTable.render(table))
        }
        print("wrote \(output): \(panels.count) head\(panels.count == 1 ? "" : "s") × \(ids.count)×\(ids.count) cells")
    }
}
