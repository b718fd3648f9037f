import Foundation
import Kernels
import Model
import Verification

/// Training benchmarks on the CS336 shape: the backward of the GEMM-bound layers, one block's
/// backward through the whole step, and a whole training step (forward, loss, backward,
/// clipping, AdamW).
enum TrainingCases {
    static func all(_ shape: BenchShape, quick: Bool) -> [BenchCase] {
        let batches = quick ? [1] : [1, 8]
        return batches.flatMap { [linearBackward(shape, batch: $0), attentionBackward(shape, batch: $0)] }
            + batches.map { step(shape, batch: $0) }
    }

    /// The GEMMs of one training step at [batch, context]: the forward's, then every backward's.
    static func stepGemms(_ shape: BenchShape, batch: Int) -> GemmWork {
        let rows = batch * shape.context
        return ModelCases.blockGemms(shape, batch: batch) * shape.layers
            + shape.linearGemm(rows: rows, inFeatures: shape.dModel, outFeatures: shape.vocab)
            + shape.blockBackwardGemms(batch: batch) * shape.layers
            + shape.linearBackwardGemms(rows: rows, inFeatures: shape.dModel, outFeatures: shape.vocab)
    }

    static func linearBackward(_ shape: BenchShape, batch: Int) -> BenchCase {
        let rows = batch * shape.context, (inFeatures, outFeatures) = (shape.dModel, shape.vocab)
        return BenchCase(name: "backward/lm_head/B\(batch)", detail: "[\(rows), \(inFeatures)] ← \(outFeatures)",
                         gemms: shape.linearBackwardGemms(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures), tokens: rows) {
            let memory = BenchMemory()
            let x = memory.matrix(rows: rows, columns: inFeatures, seed: 1)
            let w = memory.matrix(rows: outFeatures, columns: inFeatures, seed: 2, scale: 0.05)
            let dy = memory.matrix(rows: rows, columns: outFeatures, seed: 3, scale: 1e-3)
            let dx = memory.matrix(rows: rows, columns: inFeatures), dw = memory.matrix(rows: outFeatures, columns: inFeatures)
            let run = memory.timed { Linear.backward(dy: dy, x: x, weight: w, dx: dx, dWeight: dw) }
            run()
            // Row 0 of dX = dY·W (one call accumulated into zeros) in Double.
            let (dyValues, wValues) = (dy.row(0).array, w.array)
            let expected = (0..<inFeatures).map { i in
                (0..<outFeatures).reduce(0.0) { $0 + Double(dyValues[$1]) * Double(wValues[$1 * inFeatures + i]) }
            }
            return Prepared(run: run, check: try check(dx.row(0).array, expected, absolute: 1e-6, relative: 1e-4, "dX row 0"))
        }
    }

    static func attentionBackward(_ shape: BenchShape, batch: Int) -> BenchCase {
        let dims = shape.attentionDims(batch: batch), t = shape.context, width = shape.qkvWidth, c = shape.dModel
        return BenchCase(name: "backward/sdpa/B\(batch)", detail: "B\(batch) H\(shape.heads) T\(t) d\(shape.headDim), causal",
                         gemms: shape.attentionBackwardGemms(batch: batch), tokens: batch * t) {
            let memory = BenchMemory()
            let qkv = memory.matrix(rows: batch * t, columns: width, seed: 4), out = memory.matrix(rows: batch * t, columns: c)
            let probs = memory.matrix(rows: batch * shape.heads * t, columns: t), scratch = memory.matrix(rows: batch * shape.heads * t, columns: t)
            let dOut = memory.matrix(rows: batch * t, columns: c, seed: 5), dQKV = memory.matrix(rows: batch * t, columns: width)
            let (q, k, v) = CausalSelfAttention.split(qkv, dims), (dQ, dK, dV) = CausalSelfAttention.split(dQKV, dims)
            ScaledDotProductAttention.forward(q: q, k: k, v: v, out: out, probs: probs, dims: dims, mask: .causal(queryOffset: 0))
            let run = memory.timed {
                ScaledDotProductAttention.backward(q: q, k: k, v: v, probs: probs, dOut: dOut, dQ: dQ, dK: dK, dV: dV, scratch: scratch,
                                                   dims: dims, mask: .causal(queryOffset: 0))
            }
            run()
            // dV of head 0, batch 0 after one call: Pᵀ·dO in Double.
            let (p, g, d) = (probs.rows(0..<t).array, dOut.rows(0..<t).array, shape.headDim)
            let expected = (0..<t).flatMap { key in
                (0..<d).map { j in (0..<t).reduce(0.0) { $0 + Double(p[$1 * t + key]) * Double(g[$1 * c + j]) } }
            }
            let actual = dV.rows(0..<t).head(0, size: d).array
            return Prepared(run: run, check: try check(actual, expected, absolute: 1e-5, relative: 1e-4, "dV head 0"))
        }
    }

    static func step(_ shape: BenchShape, batch: Int) -> BenchCase {
        let rows = batch * shape.context
        return BenchCase(name: "train/step/B\(batch)", detail: "TinyStories [\(batch), \(shape.context)], fwd+bwd+AdamW",
                         gemms: stepGemms(shape, batch: batch), tokens: rows, modelFlopsPerToken: shape.trainingFlopsPerToken) {
            let config = ModelCases.tinyStories(shape)
            let model = try TransformerLM(config: config, seed: 6)
            var generator = SeededGenerator(seed: 7)
            let tokens = (0..<(rows + batch)).map { _ in Int32.random(in: 0..<Int32(shape.vocab), using: &generator) }
            // Row b is context + 1 tokens: inputs are its first context, targets its last context.
            let span = shape.context + 1
            var inputs: [Int32] = [], targets: [Int32] = []
            for b in 0..<batch {
                inputs += tokens[(b * span)..<(b * span + shape.context)]
                targets += tokens[(b * span + 1)..<((b + 1) * span)]
            }
            let step = try TrainStep(model: model, optimizer: try AdamW(layout: model.layout), batch: batch, length: shape.context,
                                     maxGradientNorm: 1)
            // Before any update: the training path's loss equals the inference path's logits'
            // cross-entropy in Double, and sits near ln V.
            let logits = try model.forward(tokens: inputs, batch: batch, length: shape.context)
            let expected = ReferenceModel.crossEntropy(logits: logits.map(Double.init), targets: targets, vocab: shape.vocab)
            let memory = BenchMemory()
            let (x, y) = (memory.copy(inputs), memory.copy(targets))
            // The first step's loss is computed before its update.
            let first = try step.run(inputs: x, targets: y, learningRate: 1e-4).loss
            guard abs(first - expected) < 1e-4, abs(first - log(Double(shape.vocab))) < 1 else {
                throw BenchFailure(description: "training loss \(first) vs inference-path loss \(expected) (ln V = \(log(Double(shape.vocab))))")
            }
            let run = memory.timed { _ = try! step.run(inputs: x, targets: y, learningRate: 1e-4) }
            return Prepared(run: run, check: String(format: "loss %.4f = inference path, ≈ ln V", first))
        }
    }
}
