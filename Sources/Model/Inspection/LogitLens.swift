import Foundation
import Kernels

/// The logit lens: each layer's residual stream read out as if it were the last, through the
/// final norm and the head, so one sees the prediction form layer by layer.
///
/// Row `i` of ``cells`` is the stream entering layer ``layers``[i] (`0`: the embeddings,
/// `numLayers`: after the last block, which reads out as the model's own logits), column `j`
/// position ``positions``[j]. Probabilities are softmax in Double of the read-out logits.
public struct LogitLens: Sendable {
    public struct Cell: Sendable {
        /// The most likely tokens, most likely first.
        public let top: [(token: Int32, probability: Double)]
        /// The probability this read-out gives the model's final prediction at the position, and
        /// its rank (0: the top token).
        public let answerProbability: Double
        public let answerRank: Int
    }

    public let layers: [Int]
    public let positions: [Int]
    /// [layers.count][positions.count]
    public let cells: [[Cell]]
    /// The model's prediction after each position of ``positions`` (its logits' top token).
    public let answers: [Int32]
    /// For each position: the first of ``layers`` from which on the answer stays the top token.
    public let settledLayer: [Int?]

    /// Read-outs of `run`'s stream at `layers` (default: all, `0...numLayers`) and `positions`
    /// (default: every position), keeping the `top` most likely tokens of each.
    public init(_ run: InspectedForward, layers: [Int]? = nil, positions: [Int]? = nil, top: Int = 5) throws {
        let model = run.model, config = model.config
        let layers = layers ?? Array(0...config.numLayers), positions = positions ?? Array(0..<run.length)
        if let bad = layers.first(where: { !(0...config.numLayers).contains($0) }) {
            throw ModelError("logit lens: layer \(bad) is outside 0...\(config.numLayers) (0: the embeddings, \(config.numLayers): after the last block)")
        }
        if let bad = positions.first(where: { !(0..<run.length).contains($0) }) {
            throw ModelError("logit lens: position \(bad) is outside the prompt's 0..<\(run.length)")
        }
        guard !layers.isEmpty, !positions.isEmpty else { throw ModelError("logit lens: no layers or no positions to read") }
        guard (1...50).contains(top) else { throw ModelError("logit lens: top must be in 1...50, got \(top)") }
        let (c, v) = (config.dModel, config.vocabSize)
        let answers = positions.map(run.prediction)
        // Read out in chunks of rows, so the logits held at once stay bounded (Gemma's vocabulary is 262,144).
        let cellsWanted = layers.count * positions.count, chunk = max(1, min(cellsWanted, (1 << 24) / v))
        let x = TensorBuffer(count: chunk * c), norm = TensorBuffer(count: chunk * c), rstd = TensorBuffer(count: chunk)
        let logits = TensorBuffer(count: chunk * v)
        var flat: [Cell] = []
        flat.reserveCapacity(cellsWanted)
        for start in stride(from: 0, to: cellsWanted, by: chunk) {
            let rows = min(chunk, cellsWanted - start)
            let input = x.matrix(at: 0, rows: rows, columns: c)
            for row in 0..<rows {
                let (i, j) = ((start + row) / positions.count, (start + row) % positions.count)
                input.row(row).copy(from: run.residual(layers[i]).row(positions[j]))
            }
            let output = logits.matrix(at: 0, rows: rows, columns: v)
            model.readOut(input, norm: norm.matrix(at: 0, rows: rows, columns: c), rstd: rstd.slice(0, rows), into: output, head: model.inference.head)
            for row in 0..<rows {
                flat.append(Self.cell(output.row(row).elements, answer: answers[(start + row) % positions.count], top: top))
            }
        }
        let cells = (0..<layers.count).map { i in Array(flat[(i * positions.count)..<((i + 1) * positions.count)]) }
        self.layers = layers
        self.positions = positions
        self.answers = answers
        self.cells = cells
        settledLayer = positions.indices.map { j in
            var settled: Int?
            for i in layers.indices.reversed() {
                guard cells[i][j].answerRank == 0 else { break }
                settled = layers[i]
            }
            return settled
        }
    }

    static func argmax(_ values: UnsafeMutableBufferPointer<Float>) -> Int {
        var best = 0
        for index in values.indices where values[index] > values[best] { best = index }
        return best
    }

    /// Softmax in Double, the top tokens, and the answer's probability and rank.
    static func cell(_ logits: UnsafeMutableBufferPointer<Float>, answer: Int32, top: Int) -> Cell {
        let highest = Double(logits[argmax(logits)])
        var total = 0.0
        for value in logits { total += exp(Double(value) - highest) }
        func probability(_ index: Int) -> Double { exp(Double(logits[index]) - highest) / total }
        let answerLogit = logits[Int(answer)]
        var rank = 0
        for value in logits where value > answerLogit { rank += 1 }
        // The top few by a partial selection: one pass keeping a short sorted list.
        var best: [Int] = []
        for index in logits.indices where best.count < top || logits[index] > logits[best[best.count - 1]] {
            let place = best.firstIndex { logits[index] > logits[$0] } ?? best.count
            best.insert(index, at: place)
            if best.count > top { best.removeLast() }
        }
        return Cell(top: best.map { (Int32($0), probability($0)) }, answerProbability: probability(Int(answer)), answerRank: rank)
    }
}
