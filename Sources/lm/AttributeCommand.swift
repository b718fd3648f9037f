import ArgumentParser
import Drawing
import Foundation
import Model
import TensorIO

/// `lm attribute`: direct logit attribution in the terminal and as SVG.
struct AttributeCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "attribute",
        abstract: "Who wrote the answer: a token's logit split into the embedding, each head and each feed-forward block.",
        discussion: """
            The residual stream after the last block is the sum of what the embedding, every \
            attention head and every feed-forward block wrote into it. Read through the final \
            norm (its scale at the position held fixed: the approximation) and the head, each \
            part's share of the logit is exact and the shares add up to the logit.
            """)

    @OptionGroup var input: InspectionInput
    @Option(help: "The token whose logit to split, as text (one token, e.g. ' Paris') (default: the model's top prediction).") var answer: String?
    @Option(help: "The same as a token id.") var answerId: Int?
    @Option(help: "The position whose prediction to split (default: the last).") var position: Int?
    @Option(help: "Parts listed, largest first.") var listed = 12
    @Option(help: "An SVG to write: per layer (attention, feed-forward) and per head, coloured by share.") var output: String?
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        guard answer == nil || answerId == nil else { throw ValidationError("give at most one of --answer and --answer-id") }
        threading.apply()
        let (loaded, ids) = try input.open(writing: output)
        let config = loaded.model.config
        let run = try InspectedForward(loaded.model, tokens: ids)
        let position = position ?? ids.count - 1
        guard (0..<ids.count).contains(position) else { throw ValidationError("--position \(position) is outside the prompt's 0..<\(ids.count)") }
        let token = try answer.map { try loaded.token($0, option: "--answer") } ?? answerId.map(Int32.init)
            ?? run.prediction(at: position)
        let parts = try DirectLogitAttribution(run, token: token, position: position)
        print("logit of '\(loaded.label(token))' (id \(token)) after \(position):\(loaded.label(ids[position])): \(String(format: "%.4f", parts.logit))"
              + (config.architecture.finalLogitSoftcap != nil ? " (before the final softcap)" : ""))
        print(String(format: "parts add up to %.4f; final norm scale held at %.4g", parts.total, parts.finalScale))
        var all: [(String, Double)] = [("embedding", parts.embedding)]
        for layer in 0..<config.numLayers {
            all += parts.heads[layer].enumerated().map { ("layer \(layer) head \($0)", $1) }
            all.append(("layer \(layer) feed-forward", parts.feedForward[layer]))
        }
        var table = [["part", "share of the logit"]]
        table += all.sorted { abs($0.1) > abs($1.1) }.prefix(listed).map { [$0.0, String(format: "%+.4f", $0.1)] }
        print(TextTable.render(table))
        var layers = [["layer", "attention", "feed-forward"]]
        layers += (0..<config.numLayers).map { ["\($0)", String(format: "%+.4f", parts.attention[$0]), String(format: "%+.4f", parts.feedForward[$0])] }
        print(TextTable.render(layers))
        if let output {
            let magnitude = max(all.map { abs($0.1) }.max() ?? 1, 1e-6)
            let layerRows = (0..<config.numLayers).map { "layer \($0)" }
            let byLayer = HeatMap.svg(values: (0..<config.numLayers).map { [parts.attention[$0], parts.feedForward[$0]] }, rowLabels: layerRows,
                                      columnLabels: ["attention", "feed-forward"],
                                      cellText: (0..<config.numLayers).map { [String(format: "%+.2f", parts.attention[$0]), String(format: "%+.2f", parts.feedForward[$0])] },
                                      scale: .diverging(magnitude: magnitude), title: "Who wrote '\(loaded.label(token))': each block's share of its logit",
                                      caption: String(format: "logit %.3f = embedding %.3f + the parts below (blue raises it, red lowers it)", parts.logit, parts.embedding))
            let byHead = HeatMap.svg(values: parts.heads, rowLabels: layerRows, columnLabels: (0..<config.numHeads).map { "head \($0)" },
                                     scale: .diverging(magnitude: magnitude), title: "Each head's share", caption: input.model)
            do { try AtomicFile.write(Data(SVGStack.stacked([byLayer, byHead]).utf8), to: output) } catch { throw ModelError("\(error)") }
            print("wrote \(output)")
        }
    }
}
