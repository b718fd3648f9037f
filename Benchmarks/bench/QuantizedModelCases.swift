import Foundation
import Kernels
import Model
import TensorIO

/// Decode and prefill with the weights kept in ggml blocks, on two real models' shapes: random
/// models quantized by our own quantizer as llama.cpp lays out the real files, so the bench needs
/// no download, and the real files (from `scripts/fetch-models.sh`) when present.
/// - SmolLM2-135M: Q4_1 matrices, the tied head and embedding in Q8_0;
/// - Gemma 3 270M: Q5_0 matrices (the real Q4_K_M file mixes Q5_0, Q8_0, Q4_K and Q6_K), the
///   tied 262,144 × 640 head in Q8_0, 70% of the bytes a decode step reads.
enum QuantizedModelCases {
    /// SmolLM2-135M: d_model 576, 30 layers, 9 heads over 3 KV heads, d_ff 1536, vocab 49,152,
    /// RoPE θ 100,000 (the context is the bench's, not the model's 8,192).
    static let smolLM2 = ModelConfig(vocabSize: 49_152, contextLength: 1_024, dModel: 576, numLayers: 30, numHeads: 9,
                                     dFF: 1_536, ropeTheta: 100_000, numKVHeads: 3)

    /// Gemma 3 270M: d_model 640, 18 layers (15 sliding over 512 positions), 4 heads of 256 over
    /// 1 KV head, d_ff 2,048 (GeGLU), vocab 262,144, tied head (context: the bench's).
    static let gemma3: ModelConfig = {
        var config = ModelConfig(vocabSize: 262_144, contextLength: 1_024, dModel: 640, numLayers: 18, numHeads: 4, dFF: 2_048,
                                 ropeTheta: 1_000_000, numKVHeads: 1, normEps: 1e-6)
        config.architecture = ModelFamily.gemma3Architecture(dModel: 640, layers: 18, window: 512, sliding: (0..<18).map { $0 % 6 < 5 })
        config.architecture.headDim = 256
        config.architecture.localRopeTheta = 10_000
        return config
    }()

    /// A model the cases run: a random one of `config` written in `format` (its head in Q8_0), or a real file.
    struct Source {
        let name: String
        let detail: String
        let config: ModelConfig
        let format: QuantizedMatrix.Format?
        let realFile: String?

        /// Bytes one decode step reads: every matrix's blocks (a tied head reads the whole
        /// embedding) and the norms, or the real file's tensors.
        var bytesPerToken: Int {
            if let realFile { return (try? GGUFFile(path: realFile))?.tensors.reduce(0) { $0 + $1.byteCount } ?? 0 }
            let c = config, blocks = format!.blockBytes, q8_0 = QuantizedMatrix.Format.q8_0.blockBytes
            let perLayer = (2 * c.attentionWidth * c.dModel + 2 * c.kvDim * c.dModel + 3 * c.dFF * c.dModel) / 32 * blocks + 4 * c.dModel * 4
            return c.numLayers * perLayer + c.vocabSize * c.dModel / 32 * q8_0 + c.dModel * 4
        }
    }

    static let sources: [Source] = {
        var sources = [Source(name: "smollm2-q4_1", detail: "SmolLM2 shape, Q4_1 + Q8_0 head", config: smolLM2, format: .q4_1, realFile: nil),
                       Source(name: "gemma3-q5_0", detail: "Gemma 3 270M shape, Q5_0 + Q8_0 head", config: gemma3, format: .q5_0, realFile: nil)]
        for (name, path, detail, config) in [("smollm2-file", "models/SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2, the real file", smolLM2),
                                             ("gemma3-file", "models/gemma-3-270m-q4_k_m.gguf", "Gemma 3 270M, the real Q4_K_M file", gemma3)]
        where FileManager.default.fileExists(atPath: path) {
            sources.append(Source(name: name, detail: detail, config: config, format: nil, realFile: path))
        }
        return sources
    }()

    static func all(quick: Bool) -> [BenchCase] {
        let steps = quick ? 32 : 128
        return sources.flatMap { source in
            [decode("decode/\(source.name)", source: source, steps: steps, eightBit: false),
             decode("decode/\(source.name)-8bit", source: source, steps: steps, eightBit: true),
             prefill("prefill/\(source.name)", source: source, length: 256, eightBit: false),
             prefill("prefill/\(source.name)-8bit", source: source, length: 256, eightBit: true)]
        }
    }

    /// The models, built once per run and per activation design: loading the file keeps its
    /// blocks mapped, so both designs share one file.
    nonisolated(unsafe) private static var models: [String: TransformerLM] = [:]

    static func model(_ name: String, eightBit: Bool) throws -> TransformerLM {
        let key = "\(name) \(eightBit)"
        if let model = models[key] { return model }
        guard let source = sources.first(where: { $0.name == name }) else { preconditionFailure("bench: no model source \(name)") }
        let path = try source.realFile ?? syntheticFile(source)
        let model = try GGUFCheckpoint.load(file: try GGUFFile(path: path), keepQuantized: true, eightBitActivations: eightBit)
        models[key] = model
        return model
    }

    /// A random model of the source's shape with a tied head, written by `GGUFExport` into a
    /// temporary file (once per run).
    nonisolated(unsafe) private static var synthetic: [String: String] = [:]
    static func syntheticFile(_ source: Source) throws -> String {
        if let path = synthetic[source.name] { return path }
        let model = try TransformerLM(config: source.config, seed: 11)
        if let head = model.tensor("lm_head.weight") { _ = head.update(fromContentsOf: model.tensor("token_embeddings.weight")!) }
        let path = NSTemporaryDirectory() + "/bench-\(source.name)-\(ProcessInfo.processInfo.processIdentifier).gguf"
        try GGUFExport.write(PretrainedModel(model: model, path: "bench \(source.detail)"), storage: .quantized(source.format!), to: path)
        if synthetic.isEmpty { atexit { for path in QuantizedModelCases.synthetic.values { unlink(path) } } }
        synthetic[source.name] = path
        return path
    }

    static func decode(_ name: String, source: Source, steps: Int, eightBit: Bool) -> BenchCase {
        BenchCase(name: name, detail: "\(source.detail)\(eightBit ? ", 8-bit activations" : ""), \(steps) steps",
                  tokens: steps, weightBytesPerToken: source.bytesPerToken) {
            let model = try model(source.name, eightBit: eightBit)
            let session = InferenceSession(model: model, context: 512)
            let sampler = GreedySampler()
            // The cached step against a full forward of the same tokens (two code paths agree; with
            // 8-bit activations both round, but rounding is discontinuous: a 1e-6 difference in an
            // activation can move its code a whole step, and SmolLM2's outlier dimensions make
            // the steps large, so two orders of the same sums end up ~1 apart in the logits).
            let first = try session.append([1, 2, 3], allLogits: false)
            let full = try model.forward(tokens: [1, 2, 3], batch: 1, length: 3).suffix(model.config.vocabSize)
            let checked = try check(first, full.map(Double.init), absolute: eightBit ? 5 : 1e-3, relative: 1e-3, "\(name): cached vs full forward")
            var last: Int32 = 1
            let run = {
                session.reset()
                for _ in 0..<steps { last = sampler.sample(try! session.step(last)) }
            }
            run()
            return Prepared(run: run, check: checked)
        }
    }

    /// `eightBit`: the prompt's rows rounded to 8 bits too (the interleaved GEMM on AVX-512 VNNI),
    /// checked as loosely as the 8-bit decode step, for the same reason.
    static func prefill(_ name: String, source: Source, length: Int, eightBit: Bool) -> BenchCase {
        ModelCases.prefill(name, source.config, length: length, detail: source.detail + (eightBit ? ", 8-bit activations" : ""),
                           tolerance: eightBit ? 5 : 1e-3) { try model(source.name, eightBit: eightBit) }
    }
}
