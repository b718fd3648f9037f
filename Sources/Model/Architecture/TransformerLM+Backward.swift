import Kernels

extension TransformerLM {
    /// The gradients of ``forward(tokens:batch:into:cache:streams:logitRows:logits:interventions:using:)`` over all rows
    /// without a cache, read from what it saved: on entry `saved`'s logits hold ∂L/∂logits (the
    /// cross-entropy leaves them there); the gradients of every parameter accumulate into
    /// `gradients` (zeroed by the caller once per step), from the head down to the embedding.
    ///
    /// `weights` are what the forward multiplied with. `gradients` nil: the model's own parameters
    /// are frozen and only what `weights` train themselves (LoRA adapters) gets gradients; the
    /// embedding's gradient, the head's and the gains' are then never computed.
    func backward(tokens: UnsafeBufferPointer<Int32>, batch: Int, saved: ForwardActivations, workspace: BackwardWorkspace,
                  gradients: ModelTensors?, weights used: InferenceWeights? = nil) {
        let used = used ?? inference
        let (n, length) = (tokens.count, tokens.count / batch)
        let dims = attentionDims(batch: batch, length: length)
        let positions = saved.positions(batch: batch, length: length, start: 0)
        let rotary = ropeTables.map { RotaryPositions(table: $0, positions: positions) }
        let (normFinal, rstdFinal) = saved.finalNorm(rows: n)
        // logits = normFinal · headᵀ
        workspace.dNorm.fill(0)
        Linear.backward(dy: saved.logits!.matrix(rows: n, columns: config.vocabSize), x: normFinal, weight: used.head,
                        dx: workspace.dNorm, dWeight: gradients?.head)
        // normFinal = rmsnorm(last residual)
        workspace.dResidual.fill(0)
        RMSNorm.backward(dy: workspace.dNorm, x: saved.residual(config.numLayers, rows: n), weight: weights.finalNorm,
                         rstd: rstdFinal, dx: workspace.dResidual, dWeight: gradients?.finalNorm)
        for layer in stride(from: config.numLayers - 1, through: 0, by: -1) {
            TransformerBlock.backward(weights: used.layers[layer], gradients: gradients.map { BlockGradients($0.layers[layer]) } ?? .frozen,
                                      saved: saved.layer(layer, dims: dims), workspace: workspace, dims: dims,
                                      rope: rotary[ropeOfLayer[layer]], settings: layerSettings[layer])
        }
        guard let gradients else { return }
        // The embedding's rows were scaled on their way in (Gemma).
        if let scale = config.architecture.embeddingScale { workspace.dResidual.scale(by: scale) }
        Embedding.backward(ids: tokens, dy: workspace.dResidual, dTable: gradients.embedding)
    }
}
