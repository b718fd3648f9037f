import Kernels

/// Activation patching: a clean prompt and a corrupted one of the same length ("The capital
/// of France is" / "… of Italy is"). The corrupted prompt runs again with one piece of the
/// clean run's activations put in its place, and the clean answer's probability says how much
/// that piece carried: where it comes back, the fact lives there.
///
/// The patched runs go through the model's own forward (``TransformerLM``'s interventions), many
/// at once as one batch, one site per sequence of the batch.
public struct ActivationPatching: Sendable {
    /// What is copied from the clean run into the corrupted one.
    public enum Site: Hashable, Sendable {
        /// Nothing: the corrupted run itself.
        case none
        /// The residual stream entering layer `entering` (0: the embeddings; `numLayers`: after
        /// the last block) at `positions`.
        case stream(entering: Int, positions: [Int])
        /// Head `head`'s output in layer `layer`, at every position.
        case head(layer: Int, head: Int)
        /// Layer `layer`'s feed-forward output, at every position.
        case feedForward(layer: Int)
    }

    /// What one patched run gave at the last position.
    public struct Outcome: Sendable {
        /// The clean answer's probability.
        public let probability: Double
        /// Logit of the clean answer minus that of the corrupted answer.
        public let logitDifference: Double
    }

    /// The token the clean prompt predicts (or the one asked for), and the corrupted prompt's.
    public let cleanAnswer: Int32, corruptedAnswer: Int32
    /// The unpatched runs, as outcomes.
    public let clean: Outcome, corrupted: Outcome
    public let sites: [Site]
    /// One per site.
    public let outcomes: [Outcome]

    /// The share of the clean answer's probability a site brings back: 0 as corrupted, 1 as clean.
    public func recovered(_ outcome: Outcome) -> Double {
        let span = clean.probability - corrupted.probability
        return abs(span) < 1e-12 ? 0 : (outcome.probability - corrupted.probability) / span
    }

    /// Runs `corrupted` with each of `sites` patched from `clean` (token ids of the same count).
    /// `answer`: the token whose probability is measured (default: the clean run's top token).
    /// `progress` hears (runs done, runs in all).
    public init(_ model: TransformerLM, clean: [Int32], corrupted: [Int32], sites: [Site], answer: Int32? = nil,
                progress: ((Int, Int) -> Void)? = nil) throws {
        guard clean.count == corrupted.count else {
            throw ModelError("patching: the clean prompt has \(clean.count) tokens and the corrupted one \(corrupted.count); they must have the same number")
        }
        let config = model.config, t = clean.count
        for site in sites { try Self.check(site, config: config, length: t) }
        let cleanRun = try InspectedForward(model, tokens: clean), corruptedRun = try InspectedForward(model, tokens: corrupted)
        let cleanLast = cleanRun.logits.row(t - 1), corruptedLast = corruptedRun.logits.row(t - 1)
        let cleanAnswer = answer ?? cleanRun.prediction(at: t - 1)
        guard (0..<config.vocabSize).contains(Int(cleanAnswer)) else { throw ModelError("patching: answer token \(cleanAnswer) is outside the vocabulary of \(config.vocabSize)") }
        let corruptedAnswer = corruptedRun.prediction(at: t - 1)
        let outcome = { (logits: UnsafeMutableBufferPointer<Float>) in
            Outcome(probability: LogitLens.cell(logits, answer: cleanAnswer, top: 1).answerProbability,
                    logitDifference: Double(logits[Int(cleanAnswer)]) - Double(logits[Int(corruptedAnswer)]))
        }
        self.cleanAnswer = cleanAnswer
        self.corruptedAnswer = corruptedAnswer
        self.clean = outcome(cleanLast.elements)
        self.corrupted = outcome(corruptedLast.elements)
        self.sites = sites

        // Batches of sequences, each a copy of the corrupted prompt with its own site patched.
        let batch = max(1, min(sites.count, 512 / t, 64))
        let (c, v) = (config.dModel, config.vocabSize)
        let last = TensorBuffer(count: batch * c), norm = TensorBuffer(count: batch * c), rstd = TensorBuffer(count: batch)
        let logits = TensorBuffer(count: batch * v)
        let patcher = Patcher(model: model, clean: cleanRun, length: t)
        var outcomes: [Outcome] = []
        for start in stride(from: 0, to: sites.count, by: batch) {
            let group = Array(sites[start..<min(start + batch, sites.count)])
            let b = group.count
            let tokens = [Int32]((0..<b).flatMap { _ in corrupted })
            let saved = try model.activations(batch: b, length: t)
            tokens.withUnsafeBufferPointer { ids in
                model.forward(tokens: ids, batch: b, into: saved, logitRows: 0..<0, interventions: patcher.interventions(for: group))
            }
            try model.requireStorageIntact()
            let stream = saved.residual(config.numLayers, rows: b * t), rows = last.matrix(at: 0, rows: b, columns: c)
            for k in 0..<b { rows.row(k).copy(from: stream.row(k * t + t - 1)) }
            let output = logits.matrix(at: 0, rows: b, columns: v)
            model.readOut(rows, norm: norm.matrix(at: 0, rows: b, columns: c), rstd: rstd.slice(0, b), into: output, head: model.inference.head)
            for k in 0..<b { outcomes.append(outcome(output.row(k).elements)) }
            progress?(outcomes.count, sites.count)
        }
        self.outcomes = outcomes
    }

    static func check(_ site: Site, config: ModelConfig, length t: Int) throws {
        switch site {
        case .none: return
        case .stream(let entering, let positions):
            guard (0...config.numLayers).contains(entering) else { throw ModelError("patching: layer \(entering) is outside 0...\(config.numLayers)") }
            if let bad = positions.first(where: { !(0..<t).contains($0) }) { throw ModelError("patching: position \(bad) is outside the prompt's 0..<\(t)") }
        case .head(let layer, let head):
            guard (0..<config.numLayers).contains(layer) else { throw ModelError("patching: layer \(layer) is outside 0..<\(config.numLayers)") }
            guard (0..<config.numHeads).contains(head) else { throw ModelError("patching: head \(head) is outside 0..<\(config.numHeads)") }
        case .feedForward(let layer):
            guard (0..<config.numLayers).contains(layer) else { throw ModelError("patching: layer \(layer) is outside 0..<\(config.numLayers)") }
        }
    }

    /// Every stream site of a layers × positions grid (layers `0...numLayers`).
    public static func streamGrid(layers: Int, length: Int) -> [Site] {
        (0...layers).flatMap { layer in (0..<length).map { Site.stream(entering: layer, positions: [$0]) } }
    }

    /// Copies the clean run's pieces into the sequences of a patched batch.
    final class Patcher: @unchecked Sendable {
        let model: TransformerLM
        let clean: InspectedForward
        let t: Int
        let masked: TensorBuffer, delta: TensorBuffer

        init(model: TransformerLM, clean: InspectedForward, length: Int) {
            (self.model, self.clean, t) = (model, clean, length)
            masked = TensorBuffer(count: length * model.config.attentionWidth)
            delta = TensorBuffer(count: 2 * length * model.config.dModel)
        }

        /// The forward's interventions for a batch whose sequence `k` patches `sites[k]`.
        func interventions(for sites: [Site]) -> TransformerLM.Interventions {
            TransformerLM.Interventions(
                branch: { [self] layer, branch, a in
                    for (k, site) in sites.enumerated() {
                        let rows = (k * t)..<((k + 1) * t)
                        switch (site, branch) {
                        case (.head(layer, let head), .attention): patchHead(head, layer: layer, rows: rows, a)
                        case (.feedForward(layer), .feedForward): patchFeedForward(layer: layer, rows: rows, a)
                        default: break
                        }
                    }
                },
                stream: { [self] entering, stream in
                    for (k, site) in sites.enumerated() {
                        guard case .stream(entering, let positions) = site else { continue }
                        for p in positions { stream.row(k * t + p).copy(from: clean.residual(entering).row(p)) }
                    }
                })
        }

        /// Adds (clean − patched) head output to the branch: `output_proj` is linear, so this
        /// is the head's output replaced.
        func patchHead(_ head: Int, layer: Int, rows: Range<Int>, _ a: BlockActivations) {
            let config = model.config, d = config.headDim
            let contexts = masked.matrix(at: 0, rows: t, columns: config.attentionWidth)
            contexts.fill(0)
            let cleanContext = clean.layer(layer).context
            for row in 0..<t {
                let target = contexts.row(row).head(head, size: d).elements
                let from = cleanContext.row(row).head(head, size: d).elements, now = a.context.row(rows.lowerBound + row).head(head, size: d).elements
                for i in 0..<d { target[i] = from[i] - now[i] }
            }
            let branch = (a.postAttention?.raw ?? a.afterAttention).rows(rows)
            Linear.forward(x: contexts, weight: model.inference.layers[layer].output, y: branch, accumulate: true)
        }

        /// Puts the clean feed-forward output in place of the patched one.
        func patchFeedForward(layer: Int, rows: Range<Int>, _ a: BlockActivations) {
            let cleanLayer = clean.layer(layer)
            if let post = a.postFeedForward, let cleanPost = cleanLayer.postFeedForward {
                post.raw.rows(rows).copy(from: cleanPost.raw)
                return
            }
            // Without a post-norm the branch is already in the stream: take it out, put the clean one in.
            let down = model.inference.layers[layer].down, c = model.config.dModel
            let now = delta.matrix(at: 0, rows: t, columns: c), then = delta.matrix(at: t * c, rows: t, columns: c)
            Linear.forward(x: a.gated.rows(rows), weight: down, y: now)
            Linear.forward(x: cleanLayer.gated, weight: down, y: then)
            let stream = a.output.rows(rows)
            for row in 0..<t {
                let target = stream.row(row).elements, old = now.row(row).elements, new = then.row(row).elements
                for i in 0..<c { target[i] += new[i] - old[i] }
            }
        }
    }
}
