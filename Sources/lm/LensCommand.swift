import ArgumentParser
import Drawing
import Foundation
import Model
import TensorIO

/// `lm lens`: the logit lens in the terminal and as SVG.
struct LensCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "lens",
        abstract: "The logit lens: each layer's residual stream read out through the final norm and the head.",
        discussion: """
            For every position of the prompt and every layer (0: the embeddings, the last: after the \
            last block, which is the model's own prediction), the most likely next token if the \
            model stopped there, and the probability it gives the model's final answer. Shows at \
            which layer the answer forms.
            """)

    @OptionGroup var input: InspectionInput
    @Option(help: "Layers to read, e.g. 0-10 or 0,5,30 (default: all).") var layers: String?
    @Option(help: "Positions to read: 'all', 'last', or a list such as 0,3-5 (default: all).") var positions = "all"
    @Option(help: "Tokens kept per cell (1…50).") var top = 3
    @Option(help: "An SVG heat map to write (layers × positions, coloured by the answer's probability).") var output: String?
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        threading.apply()
        let (loaded, ids) = try input.open(writing: output)
        let config = loaded.model.config
        let layerList = try layers.map { try IndexList.parse($0, option: "--layers", range: 0...config.numLayers) }
        let positionList: [Int]? = switch positions {
        case "all": nil
        case "last": [ids.count - 1]
        default: try IndexList.parse(positions, option: "--positions", range: 0...(ids.count - 1))
        }
        guard (1...50).contains(top) else { throw ValidationError("--top must be in 1...50, got \(top)") }
        let started = Date()
        let lens = try LogitLens(try InspectedForward(loaded.model, tokens: ids), layers: layerList, positions: positionList, top: top)
        let seconds = Date().timeIntervalSince(started)
        let columns = lens.positions.map { "\($0):\(loaded.label(ids[$0]))" }
        // The table: one row per layer, one column per position: the top token and its probability.
        var table = [["layer"] + columns]
        for (i, layer) in lens.layers.enumerated() {
            table.append([layer == config.numLayers ? "\(layer) (out)" : "\(layer)"] + lens.cells[i].map { cell in
                "\(loaded.label(cell.top[0].token)) \(Self.percent(cell.top[0].probability))"
            })
        }
        print(TextTable.render(table))
        for (j, position) in lens.positions.enumerated() {
            let settled = lens.settledLayer[j].map { "from layer \($0) on" } ?? "at no layer read"
            print("after \(position):\(loaded.label(ids[position])) the answer '\(loaded.label(lens.answers[j]))' is the top token \(settled)")
        }
        print(String(format: "%d read-outs in %.2f s", lens.layers.count * lens.positions.count, seconds))
        if let output {
            let values = lens.cells.map { $0.map(\.answerProbability) }
            let text = lens.cells.map { $0.map { loaded.label($0.top[0].token) } }
            let svg = HeatMap.svg(values: values, rowLabels: lens.layers.map { "layer \($0)" }, columnLabels: columns, cellText: text,
                                  scale: .sequential(maximum: 1), title: "Logit lens: \(input.model)",
                                  caption: "cell: the top token if the model stopped at that layer; colour: the probability of its final answer")
            do { try AtomicFile.write(Data(svg.utf8), to: output) } catch { throw ModelError("\(error)") }
            print("wrote \(output)")
        }
    }

    static func percent(_ p: Double) -> String { p >= 0.995 ? "100%" : p < 0.001 ? "<0.1%" : String(format: p < 0.1 ? "%.1f%%" : "%.0f%%", 100 * p) }
}
