import ArgumentParser
import Drawing
import Foundation
import Model
import TensorIO

/// `lm patch`: activation patching in the terminal and as SVG.
struct PatchCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "patch",
        abstract: "Find where a fact lives: copy pieces of a clean run into a corrupted one and see the answer come back.",
        discussion: """
            --clean and --corrupted must encode to the same number of tokens ("The capital of \
            France is" / "The capital of Italy is"). The corrupted prompt runs again with one piece \
            of the clean run put in: the residual stream at one (layer, position), one head's \
            output, or one feed-forward block's output. The number shown is the share of the clean \
            answer's probability that comes back: 0 as corrupted, 1 as clean.
            """)

    @Option(help: "A model directory, a .gguf file or a Hugging Face directory.") var model: String
    @Option(help: "The clean prompt.") var clean: String
    @Option(help: "The corrupted prompt, of the same token length.") var corrupted: String
    @Option(help: "A tokenizer directory to use instead of the model's.") var tokenizer: String?
    @Option(help: "The answer whose probability is measured, as one token's text (default: the clean run's top prediction).") var answer: String?
    @Flag(help: "Also patch every head's output and every feed-forward output (one run each).") var components = false
    @Option(help: "An SVG to write: the layers × positions heat map (and the heads' and feed-forwards' with --components).") var output: String?
    @Flag(help: "No progress display.") var quiet = false
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        if let output {
            try OutputOverInput.refuse(files: [NamedPath("--output", output)], inputs: [NamedPath("--model", model), NamedPath("--tokenizer", tokenizer)])
        }
        threading.apply()
        let loaded = try LoadedForInspection(model: model, tokenizer: tokenizer)
        let cleanIDs = try loaded.ids(clean, option: "--clean"), corruptedIDs = try loaded.ids(corrupted, option: "--corrupted")
        try loaded.check(cleanIDs, option: "--clean")
        try loaded.check(corruptedIDs, option: "--corrupted")
        guard cleanIDs.count == corruptedIDs.count else {
            throw ValidationError("--clean is \(cleanIDs.count) tokens (\(cleanIDs.map(loaded.label).joined(separator: "|"))) and --corrupted "
                                  + "\(corruptedIDs.count) (\(corruptedIDs.map(loaded.label).joined(separator: "|"))); they must have the same number")
        }
        let config = loaded.model.config, t = cleanIDs.count
        let answerID = try answer.map { try loaded.token($0, option: "--answer") }
        var sites = ActivationPatching.streamGrid(layers: config.numLayers, length: t)
        if components {
            sites += (0..<config.numLayers).flatMap { layer in (0..<config.numHeads).map { ActivationPatching.Site.head(layer: layer, head: $0) } }
            sites += (0..<config.numLayers).map { ActivationPatching.Site.feedForward(layer: $0) }
        }
        let progress = ProgressLine(quiet: quiet)
        let started = Date()
        let patching = try ActivationPatching(loaded.model, clean: cleanIDs, corrupted: corruptedIDs, sites: sites, answer: answerID) { done, all in
            progress.update("patched runs \(done) / \(all)", force: done == all)
        }
        progress.finish()
        let seconds = Date().timeIntervalSince(started)
        let answerLabel = loaded.label(patching.cleanAnswer)
        print("clean answer '\(answerLabel)': \(LensCommand.percent(patching.clean.probability)) clean, "
              + "\(LensCommand.percent(patching.corrupted.probability)) corrupted (which answers '\(loaded.label(patching.corruptedAnswer))')")
        // The stream grid: rows = layers, columns = positions.
        let columns = (0..<t).map { position in
            cleanIDs[position] == corruptedIDs[position] ? "\(position):\(loaded.label(cleanIDs[position]))"
                : "\(position):\(loaded.label(cleanIDs[position]))/\(loaded.label(corruptedIDs[position]))"
        }
        let grid = (0...config.numLayers).map { layer in (0..<t).map { patching.recovered(patching.outcomes[layer * t + $0]) } }
        var table = [["stream entering"] + columns]
        table += grid.enumerated().map { layer, row in ["layer \(layer)"] + row.map { String(format: "%.2f", $0) } }
        print(TextTable.render(table))
        var pictures = [HeatMap.svg(values: grid, rowLabels: (0...config.numLayers).map { "layer \($0)" }, columnLabels: columns,
                                    cellText: grid.map { $0.map { String(format: "%.2f", $0) } }, scale: .diverging(magnitude: 1),
                                    title: "Where '\(answerLabel)' lives: the residual stream patched at one layer and position",
                                    caption: "share of the clean answer's probability that comes back (1: as clean, 0: as corrupted)")]
        if components {
            let offset = (config.numLayers + 1) * t
            let heads = (0..<config.numLayers).map { layer in (0..<config.numHeads).map { patching.recovered(patching.outcomes[offset + layer * config.numHeads + $0]) } }
            let feedForward = (0..<config.numLayers).map { patching.recovered(patching.outcomes[offset + config.numLayers * config.numHeads + $0]) }
            var ranked = [["component", "recovered"]]
            let named = heads.enumerated().flatMap { layer, row in row.enumerated().map { ("layer \(layer) head \($0)", $1) } }
                + feedForward.enumerated().map { ("layer \($0) feed-forward", $1) }
            ranked += named.sorted { abs($0.1) > abs($1.1) }.prefix(12).map { [$0.0, String(format: "%+.3f", $0.1)] }
            print(TextTable.render(ranked))
            pictures.append(HeatMap.svg(values: zip(heads, feedForward).map { $0 + [$1] }, rowLabels: (0..<config.numLayers).map { "layer \($0)" },
                                        columnLabels: (0..<config.numHeads).map { "head \($0)" } + ["feed-forward"], scale: .diverging(magnitude: 1),
                                        title: "Each head's and feed-forward's output patched (all positions)", caption: model))
        }
        print(String(format: "%d patched runs in %.1f s", sites.count, seconds))
        if let output {
            do { try AtomicFile.write(Data(SVGStack.stacked(pictures).utf8), to: output) } catch { throw ModelError("\(error)") }
            print("wrote \(output)")
        }
    }
}
