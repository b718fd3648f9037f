import Foundation
import Kernels
import Model
import TensorIO

/// A fine-tuning step on the real shapes (SmolLM2-135M, Gemma 3 270M; the real files when
/// present): LoRA on the base kept in its blocks (QLoRA), LoRA on the base decoded to Float32,
/// and full fine-tuning of the decoded base, each a whole step (forward, loss, backward, clipping,
/// AdamW) at the same [batch, length], for tokens/s side by side. Rank 8 on q, k, v, o, gate, up
/// and down, as PyTorch + PEFT runs it in `scripts/lora/peft_train_bench.py`.
enum LoRACases {
    static func all(quick: Bool) -> [BenchCase] {
        let (batch, length) = quick ? (1, 64) : (4, 256)
        return QuantizedModelCases.sources.flatMap { source in
            [step("finetune/qlora/\(source.name)", source: source, batch: batch, length: length, mode: .qlora),
             step("finetune/lora/\(source.name)", source: source, batch: batch, length: length, mode: .lora),
             step("finetune/full/\(source.name)", source: source, batch: batch, length: length, mode: .full)]
        }
    }

    enum Mode: String { case qlora = "QLoRA r8, blocks kept", lora = "LoRA r8, base in Float32", full = "full fine-tuning" }

    static func step(_ name: String, source: QuantizedModelCases.Source, batch: Int, length: Int, mode: Mode) -> BenchCase {
        let rows = batch * length
        return BenchCase(name: name, detail: "\(source.detail), \(mode.rawValue), [\(batch), \(length)]", tokens: rows) {
            let path = try source.realFile ?? QuantizedModelCases.syntheticFile(source)
            let model = try GGUFCheckpoint.load(file: try GGUFFile(path: path), keepQuantized: mode == .qlora)
            let config = model.config
            var generator = SeededGenerator(seed: 3)
            let inputs = (0..<rows).map { _ in Int32.random(in: 0..<Int32(config.vocabSize), using: &generator) }
            let targets = inputs.map { ($0 &* 31 &+ 7) % Int32(config.vocabSize) }
            let adapter = mode == .full ? nil : try LoRAAdapter(settings: .init(rank: 8), config: config, seed: 4)
            let optimizer = try AdamW(layout: adapter?.layout ?? model.layout)
            let step = try TrainStep(model: model, optimizer: optimizer, batch: batch, length: length, maxGradientNorm: 1, adapter: adapter)
            let memory = BenchMemory()
            let (x, y) = (memory.copy(inputs), memory.copy(targets))
            let logits = try model.forward(tokens: inputs, batch: batch, length: length)
            var expected = 0.0
            for t in 0..<rows {
                let row = logits[(t * config.vocabSize)..<((t + 1) * config.vocabSize)]
                let top = Double(row.max()!)
                expected += top + log(row.reduce(0) { $0 + exp(Double($1) - top) }) - Double(row[row.startIndex + Int(targets[t])])
            }
            expected /= Double(rows)
            // A fresh adapter (B = 0) starts as the base: the first step's loss (computed before
            // its update) is the base's.
            let first = try step.run(inputs: x, targets: y, learningRate: 1e-4).loss
            guard abs(first - expected) < 1e-3 else {
                throw BenchFailure(description: "\(name): first loss \(first), the base's forward gives \(expected)")
            }
            let run = memory.timed { _ = try! step.run(inputs: x, targets: y, learningRate: 1e-4) }
            return Prepared(run: run, check: String(format: "first loss %.4f (ln V %.2f)", first, log(Double(config.vocabSize))))
        }
    }
}
