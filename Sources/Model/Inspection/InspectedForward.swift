import Kernels

/// One forward pass over one sequence with every layer's intermediates kept (the training
/// mode's buffers, the standard attention kernel so that every attention weight exists): what
/// the views inside a model read (``ForwardTrace``, ``LogitLens``, ``DirectLogitAttribution``,
/// ``ActivationPatching``).
public final class InspectedForward {
    public let model: TransformerLM
    public let tokens: [Int32]
    let saved: ForwardActivations

    /// Runs `tokens` (at least one, at most the context) through `model`.
    public init(_ model: TransformerLM, tokens: [Int32]) throws {
        let t = tokens.count
        try tokens.withUnsafeBufferPointer { try model.checkTokens($0, batch: 1, length: t) }
        let config = model.config
        try SizeLimits.requireMemory(ForwardActivations.bytes(config: config, rows: t, keys: t, mode: .training, kernel: .standard),
                                     for: "inspecting a forward pass over \(t) tokens")
        self.model = model
        self.tokens = tokens
        saved = ForwardActivations(config: config, rows: t, keys: t, mode: .training, kernel: .standard)
        tokens.withUnsafeBufferPointer { model.forward(tokens: $0, batch: 1, into: saved, logitRows: 0..<t) }
        try model.requireStorageIntact()
    }

    public var length: Int { tokens.count }

    /// The residual stream entering layer `layer` (`0`: the embeddings; `numLayers`: leaving
    /// the last block): [T, C].
    public func residual(_ layer: Int) -> MatrixView { saved.residual(layer, rows: length) }

    /// Layer `layer`'s intermediates.
    public func layer(_ layer: Int) -> BlockActivations { saved.layer(layer, dims: model.attentionDims(batch: 1, length: length)) }

    /// The final norm's output [T, C] and 1/rms [T].
    var finalNorm: (output: MatrixView, rstd: UnsafeMutableBufferPointer<Float>) { saved.finalNorm(rows: length) }

    /// The logits of every position: [T, vocab] (after the final softcap where the family has one).
    public var logits: MatrixView { saved.logits!.matrix(rows: length, columns: model.config.vocabSize) }

    /// The model's most likely next token after `position`.
    public func prediction(at position: Int) -> Int32 { Int32(LogitLens.argmax(logits.row(position).elements)) }

    /// Attention weights of layer `layer`, head `head`: [T, T] (query rows, key columns).
    public func attention(layer index: Int, head: Int) -> MatrixView {
        guard case .probabilities(let probabilities) = layer(index).attention else { preconditionFailure("inspection runs the standard kernel") }
        return probabilities.rows((head * length)..<((head + 1) * length))
    }
}
