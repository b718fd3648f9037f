import Foundation
import Kernels
import Model
import Verification
import ReferenceKernels

/// Whole-model benchmarks: one block, the LM forward at batch 1 and 8, and cached decode for
/// the TinyStories and llama2.c stories15M shapes.
enum ModelCases {
    static func tinyStories(_ shape: BenchShape) -> ModelConfig {
        ModelConfig(vocabSize: shape.vocab, contextLength: shape.context, dModel: shape.dModel, numLayers: shape.layers,
                    numHeads: shape.heads, dFF: shape.dFF, ropeTheta: shape.theta)
    }

    /// llama2.c's stories15M: dim 288, 6 layers, 6 heads, hidden 768, vocab 32000, context 256.
    static let stories15M = ModelConfig(vocabSize: 32_000, contextLength: 256, dModel: 288, numLayers: 6, numHeads: 6,
                                        dFF: 768, ropeTheta: 10_000)

    static func all(_ shape: BenchShape, quick: Bool) -> [BenchCase] {
        [1, 8].flatMap { [block(shape, batch: $0), forward(shape, batch: $0)] }
            + [prefill("prefill/tinystories", tinyStories(shape)), prefill("prefill/stories15M", stories15M),
               decode("decode/tinystories", tinyStories(shape), steps: quick ? 32 : 256),
               decode("decode/stories15M", stories15M, steps: quick ? 32 : 256)]
    }

    /// The GEMMs of one block at [batch, context] (fused QKV, attention, output, gate/up, down).
    static func blockGemms(_ shape: BenchShape, batch: Int) -> GemmWork {
        let rows = batch * shape.context
        return shape.linearGemm(rows: rows, inFeatures: shape.dModel, outFeatures: shape.qkvWidth)
            + shape.attentionGemms(batch: batch)
            + shape.linearGemm(rows: rows, inFeatures: shape.attentionWidth, outFeatures: shape.dModel)
            + shape.linearGemm(rows: rows, inFeatures: shape.dModel, outFeatures: 2 * shape.dFF)
            + shape.linearGemm(rows: rows, inFeatures: shape.dFF, outFeatures: shape.dModel)
    }

    static func block(_ shape: BenchShape, batch: Int) -> BenchCase {
        let rows = batch * shape.context
        return BenchCase(name: "model/block/B\(batch)", detail: "1 block, [\(batch), \(shape.context), \(shape.dModel)]",
                         gemms: blockGemms(shape, batch: batch), tokens: rows) {
            let model = try TransformerLM(config: tinyStories(shape), seed: 1)
            let hidden = TensorBuffer(rows * shape.dModel, seed: 40), output = TensorBuffer(rows * shape.dModel)
            // The first 16 positions against the reference, run alone and inside the full batch
            // (causal: later positions cannot change them).
            let t = 16
            let prefix = Array(hidden.array.prefix(t * shape.dModel))
            let alone = TensorBuffer(copying: prefix), aloneOutput = TensorBuffer(t * shape.dModel)
            try model.forwardBlock(0, hidden: alone.readOnly, batch: 1, length: t, output: aloneOutput.mutable)
            let expected = ReferenceModel.block(model, layer: 0, hidden: prefix, length: t)
            _ = try check(aloneOutput.array, expected, absolute: 1e-4, "block at T=\(t)")
            let run = { try! model.forwardBlock(0, hidden: hidden.readOnly, batch: batch, length: shape.context, output: output.mutable) }
            run()
            let checked = try check(Array(output.array.prefix(t * shape.dModel)), expected, absolute: 1e-4, "block first \(t) positions")
            return Prepared(run: run, check: checked)
        }
    }

    static func forward(_ shape: BenchShape, batch: Int) -> BenchCase {
        let rows = batch * shape.context
        let gemms = blockGemms(shape, batch: batch) * shape.layers + shape.linearGemm(rows: rows, inFeatures: shape.dModel, outFeatures: shape.vocab)
        return BenchCase(name: "model/lm_forward/B\(batch)", detail: "TinyStories, [\(batch), \(shape.context)] → logits",
                         gemms: gemms, tokens: rows) {
            let model = try TransformerLM(config: tinyStories(shape), seed: 2)
            var generator = SeededGenerator(seed: 41)
            let tokens = (0..<rows).map { _ in Int32.random(in: 0..<Int32(shape.vocab), using: &generator) }
            let logits = TensorBuffer(rows * shape.vocab)
            let run = { tokens.withUnsafeBufferPointer { try! model.forward(tokens: $0, batch: batch, length: shape.context, logits: logits.mutable) } }
            run()
            // Full forward against cached decode of the same first 8 tokens: two code paths agree.
            let session = InferenceSession(model: model)
            let cached = try session.append(Array(tokens.prefix(8)), allLogits: true)
            let full = try model.forward(tokens: Array(tokens.prefix(8)), batch: 1, length: 8)
            _ = try check(cached, full.map(Double.init), absolute: 1e-4, relative: 1e-4, "cached vs full forward")
            let checked = try check(Array(logits.array.prefix(8 * shape.vocab)), full.map(Double.init), absolute: 1e-4, relative: 1e-4,
                                    "batched forward vs single sequence")
            return Prepared(run: run, check: checked)
        }
    }

    /// A prompt filling the whole context in one cached pass (`lm generate`'s prefill): GEMMs,
    /// so its speed is compared with raw sgemm on the same shapes.
    /// `length` tokens (default: the whole context) of `model` (default: a random one of
    /// `config`); `detail` names what is run when it is not a random model.
    static func prefill(_ name: String, _ config: ModelConfig, length: Int? = nil, detail: String? = nil, tolerance: Double = 1e-4,
                        model makeModel: (() throws -> TransformerLM)? = nil) -> BenchCase {
        var shape = BenchShape(config)
        let t = length ?? config.contextLength
        shape.context = t
        return BenchCase(name: name, detail: "\(detail ?? "d\(config.dModel) L\(config.numLayers) V\(config.vocabSize)"), \(t)-token prompt",
                         gemms: blockGemms(shape, batch: 1) * config.numLayers + shape.linearGemm(rows: 1, inFeatures: config.dModel, outFeatures: config.vocabSize),
                         tokens: t) {
            let model = try makeModel?() ?? TransformerLM(config: config, seed: 4)
            let session = InferenceSession(model: model, maxChunk: t)
            var generator = SeededGenerator(seed: 42)
            let prompt = (0..<t).map { _ in Int32.random(in: 0..<Int32(config.vocabSize), using: &generator) }
            let run = {
                session.reset()
                _ = try! session.append(prompt)
            }
            run()
            let full = try model.forward(tokens: prompt, batch: 1, length: t)
            session.reset()
            let last = try session.append(prompt)
            let checked = try check(last, full.suffix(config.vocabSize).map(Double.init), absolute: tolerance, relative: min(tolerance, 1e-3), "prefill vs full forward, last logits")
            return Prepared(run: run, check: checked)
        }
    }

    /// Bytes of weights one decode step reads: everything but the embedding table (one row).
    static func weightBytesPerToken(_ config: ModelConfig, parameters: Int) -> Int {
        (parameters - config.vocabSize * config.dModel + config.dModel) * 4
    }

    static func decode(_ name: String, _ config: ModelConfig, steps: Int) -> BenchCase {
        BenchCase(name: name, detail: "d\(config.dModel) L\(config.numLayers) H\(config.numHeads) ff\(config.dFF) V\(config.vocabSize), \(steps) steps",
                  tokens: steps,
                  weightBytesPerToken: weightBytesPerToken(config, parameters: ParameterLayout(config: config).totalCount)) {
            let model = try TransformerLM(config: config, seed: 3)
            let session = InferenceSession(model: model)
            let sampler = GreedySampler()
            var last: Int32 = 1
            let run = {
                session.reset()
                for _ in 0..<steps { last = sampler.sample(try! session.step(last)) }
            }
            run()
            return Prepared(run: run, check: "greedy, cache \(steps) deep")
        }
    }
}
