import Foundation
import Kernels
import Model
import TensorIO

/// Decode and prefill with the weights kept in ggml blocks, on SmolLM2-135M's shape: a random
/// model quantized by our own quantizer as llama.cpp lays out SmolLM2's Q4_1 file (Q4_1
/// matrices, the tied head and embedding in Q8_0), so the bench needs no download; and the real
/// file (`models/SmolLM2-135M-Instruct.Q4_1.gguf`, from `scripts/fetch-models.sh`) when present.
enum QuantizedModelCases {
    /// SmolLM2-135M: d_model 576, 30 layers, 9 heads over 3 KV heads, d_ff 1536, vocab 49,152,
    /// RoPE θ 100,000 (the context is the bench's, not the model's 8,192).
    static let smolLM2 = ModelConfig(vocabSize: 49_152, contextLength: 1_024, dModel: 576, numLayers: 30, numHeads: 9,
                                     dFF: 1_536, ropeTheta: 100_000, numKVHeads: 3)
    static let realFile = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    static func all(quick: Bool) -> [BenchCase] {
        let steps = quick ? 32 : 128
        var cases: [BenchCase] = []
        for (source, bytes) in [("smollm2-q4_1", syntheticBytesPerToken)] + (realFileBytes.map { [("smollm2-file", $0)] } ?? []) {
            cases.append(decode("decode/\(source)", source: source, steps: steps, eightBit: false, bytesPerToken: bytes))
            cases.append(decode("decode/\(source)-8bit", source: source, steps: steps, eightBit: true, bytesPerToken: bytes))
            cases.append(prefill("prefill/\(source)", source: source, length: 256))
        }
        return cases
    }

    /// Bytes one decode step reads of the synthetic model: every matrix's blocks (the tied head
    /// reads the whole embedding) and the norms.
    static var syntheticBytesPerToken: Int {
        let c = smolLM2, q4_1 = QuantizedMatrix.Format.q4_1.blockBytes, q8_0 = QuantizedMatrix.Format.q8_0.blockBytes
        let headDim = c.dModel / c.numHeads
        let perLayer = (2 * c.dModel * c.dModel + 2 * c.numKVHeads * headDim * c.dModel + 3 * c.dFF * c.dModel) / 32 * q4_1 + 2 * c.dModel * 4
        return c.numLayers * perLayer + c.vocabSize * c.dModel / 32 * q8_0 + c.dModel * 4
    }

    /// The real file's tensor bytes, when it is here.
    static var realFileBytes: Int? {
        guard FileManager.default.fileExists(atPath: realFile), let file = try? GGUFFile(path: realFile) else { return nil }
        return file.tensors.reduce(0) { $0 + $1.byteCount }
    }

    /// The models, built once per run and per activation design: loading the file keeps its
    /// blocks mapped, so both designs share one file.
    nonisolated(unsafe) private static var models: [String: TransformerLM] = [:]

    static func model(_ source: String, eightBit: Bool) throws -> TransformerLM {
        let key = "\(source) \(eightBit)"
        if let model = models[key] { return model }
        let path = source == "smollm2-file" ? realFile : try syntheticFile()
        let model = try GGUFCheckpoint.load(file: try GGUFFile(path: path), keepQuantized: true, eightBitActivations: eightBit)
        models[key] = model
        return model
    }

    /// A random SmolLM2-shaped model with a tied head, written as Q4_1 by `GGUFExport` into a
    /// temporary file (once per run).
    nonisolated(unsafe) private static var synthetic: String?
    static func syntheticFile() throws -> String {
        if let synthetic { return synthetic }
        let model = try TransformerLM(config: smolLM2, seed: 11)
        _ = model.tensor("lm_head.weight")!.update(fromContentsOf: model.tensor("token_embeddings.weight")!)
        let path = NSTemporaryDirectory() + "/bench-smollm2-q4_1-\(ProcessInfo.processInfo.processIdentifier).gguf"
        try GGUFExport.write(PretrainedModel(model: model, path: "bench SmolLM2 shape"), storage: .quantized(.q4_1), to: path)
        atexit { if let path = QuantizedModelCases.synthetic { unlink(path) } }
        synthetic = path
        return path
    }

    static func decode(_ name: String, source: String, steps: Int, eightBit: Bool, bytesPerToken: Int) -> BenchCase {
        BenchCase(name: name, detail: "SmolLM2 shape, \(source == "smollm2-file" ? "the real file" : "Q4_1 + Q8_0 head")\(eightBit ? ", 8-bit activations" : ""), \(steps) steps",
                  tokens: steps, weightBytesPerToken: bytesPerToken) {
            let model = try model(source, eightBit: eightBit)
            let session = InferenceSession(model: model, context: 512)
            let sampler = GreedySampler()
            // The cached step against a full forward of the same tokens (two code paths agree;
            // with 8-bit activations, only the decode products round).
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

    static func prefill(_ name: String, source: String, length: Int) -> BenchCase {
        ModelCases.prefill(name, smolLM2, length: length, detail: "SmolLM2 shape, \(source == "smollm2-file" ? "the real file" : "Q4_1 + Q8_0 head")",
                           tolerance: 1e-3) { try model(source, eightBit: false) }
    }
}
