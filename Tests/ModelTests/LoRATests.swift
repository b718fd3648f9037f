import ChatTemplate
import Foundation
import Kernels
@testable import Model
import TensorIO
import TestSupport
import Tokenizer
import Verification
import XCTest

/// LoRA adapters on every family: the adapted forward equals the merged model's, the adapters'
/// gradients equal finite differences of the Double reference model's loss (the adapter merged
/// in Double) and the chain rule through the merged weight's gradient, a quantized base (QLoRA)
/// trains as its dequantized twin does, and PEFT's files round-trip.
final class LoRATests: TemporaryDirectoryTestCase {
    static let families = InspectionTests.families

    /// An adapter with every A and B random (a fresh one has B = 0: its A would get no gradient).
    static func adapter(for model: TransformerLM, rank: Int = 2, targets: [LoRATarget] = LoRATarget.allCases, seed: UInt64) throws -> LoRAAdapter {
        let adapter = try LoRAAdapter(settings: .init(rank: rank, alpha: 3, targets: targets), config: model.config, seed: seed)
        var generator = SeededGenerator(seed: seed + 1)
        for i in adapter.parameters.storage.indices { adapter.parameters.storage[i] = Float.random(in: -0.3...0.3, using: &generator) }
        return adapter
    }

    /// Inputs and targets with some targets ignored (a prompt's tokens).
    static func batch(_ config: ModelConfig, count: Int, seed: UInt64) -> (inputs: [Int32], targets: [Int32]) {
        let inputs = ModelFactory.tokens(count, vocab: config.vocabSize, seed: seed)
        var targets = inputs.map { ($0 * 5 + 1) % Int32(config.vocabSize) }
        for i in stride(from: 0, to: count, by: 3) { targets[i] = CrossEntropy.ignored }
        return (inputs, targets)
    }

    /// The model's parameters in Double with `adapter`'s values (in Double) merged in.
    static func mergedInDouble(_ model: TransformerLM, _ adapter: LoRAAdapter, values: [Double]) -> [Double] {
        var parameters = model.parameters.array.map(Double.init)
        let (settings, scale) = (adapter.settings, Double(adapter.settings.scale))
        for layer in 0..<model.config.numLayers {
            for target in settings.targets {
                let weight = model.layout.required(target.weightName(layer: layer))
                let a = adapter.layout.required(LoRAAdapter.name(of: target, layer: layer, matrix: "A"))
                let b = adapter.layout.required(LoRAAdapter.name(of: target, layer: layer, matrix: "B"))
                let (rows, columns, rank) = (weight.shape[0], weight.shape[1], settings.rank)
                for r in 0..<rows {
                    for c in 0..<columns {
                        var sum = 0.0
                        for k in 0..<rank { sum += values[b.offset + r * rank + k] * values[a.offset + k * columns + c] }
                        parameters[weight.offset + r * columns + c] += scale * sum
                    }
                }
            }
        }
        return parameters
    }

    func testAdaptedForwardEqualsTheMergedModel() throws {
        for family in Self.families {
            let model = try InspectionTests.model(family)
            let adapter = try Self.adapter(for: model, seed: 5)
            let tokens = ModelFactory.tokens(14, vocab: model.config.vocabSize, seed: 6)
            let base = try model.forward(tokens: tokens, batch: 2, length: 7)
            try model.apply(adapter: adapter)
            let adapted = try model.forward(tokens: tokens, batch: 2, length: 7)
            try model.apply(adapter: nil)
            XCTAssertEqual(try model.forward(tokens: tokens, batch: 2, length: 7), base, "\(family): removing the adapter restores the base")
            let merged = try TransformerLM(config: model.config, parameters: TensorBuffer(model.parameters.array))
            try adapter.merge(into: merged)
            let reference = ReferenceModel.logits(parameters: Self.mergedInDouble(model, adapter, values: adapter.parameters.array.map(Double.init)),
                                                  config: model.config, tokens: tokens, batch: 2, length: 7)
            assertClose(adapted, reference, absolute: 2e-5, relative: 1e-4, "\(family): adapted logits against the merged reference in Double")
            assertClose(try merged.forward(tokens: tokens, batch: 2, length: 7), reference, absolute: 2e-5, relative: 1e-4,
                        "\(family): merged model against the reference")
            XCTAssertGreaterThan(zip(adapted, base).map { abs($0 - $1) }.max()!, 1e-2, "\(family): the adapter changes the logits")
        }
    }

    func testAdapterGradientsMatchFiniteDifferencesInDouble() throws {
        for family in Self.families {
            let model = try InspectionTests.model(family)
            let adapter = try Self.adapter(for: model, seed: 8)
            let (batch, length) = (2, 6)
            let (inputs, targets) = Self.batch(model.config, count: batch * length, seed: 9)
            let session = try TrainingSession(model: model, batch: batch, length: length, adapter: adapter)
            let loss = try session.computeGradients(inputs: inputs, targets: targets)
            let gradient = session.gradients.array
            let values = adapter.parameters.array.map(Double.init)
            func referenceLoss(_ v: [Double]) -> Double {
                let logits = ReferenceModel.logits(parameters: Self.mergedInDouble(model, adapter, values: v), config: model.config,
                                                   tokens: inputs, batch: batch, length: length)
                // Mean over the targets that count.
                var sum = 0.0, counted = 0
                for row in 0..<(batch * length) where targets[row] != CrossEntropy.ignored {
                    let slice = Array(logits[(row * model.config.vocabSize)..<((row + 1) * model.config.vocabSize)])
                    let top = slice.max()!
                    sum += top + Foundation.log(slice.reduce(0) { $0 + Foundation.exp($1 - top) }) - slice[Int(targets[row])]
                    counted += 1
                }
                return sum / Double(counted)
            }
            XCTAssertEqual(loss, referenceLoss(values), accuracy: 1e-5, "\(family): loss over the counted targets")
            var generator = SeededGenerator(seed: 10)
            for entry in adapter.layout.entries {
                var probe = values
                for index in (0..<4).map({ _ in entry.offset + Int(generator.next() % UInt64(entry.count)) }) {
                    let numeric = ModelFactory.centralDifference(referenceLoss, &probe, index: index, step: 1e-4)
                    XCTAssertEqual(Double(gradient[index]), numeric, accuracy: 1e-4 + 1e-3 * abs(numeric),
                                   "\(family) \(entry.name)[\(index - entry.offset)]")
                }
            }
            // The frozen model's parameters never moved and got no gradient buffer.
            XCTAssertEqual(session.gradients.count, adapter.layout.totalCount)
        }
    }

    /// ∂L/∂B = s · ∂L/∂W' · Aᵀ and ∂L/∂A = s · Bᵀ · ∂L/∂W' with W' the merged weight: the
    /// adapters' gradients from the full model's, on every projection.
    func testAdapterGradientsFollowFromTheMergedWeightsGradient() throws {
        for family in Self.families {
            let model = try InspectionTests.model(family)
            let adapter = try Self.adapter(for: model, rank: 3, targets: [.q, .v, .o, .up, .down], seed: 12)
            let (inputs, targets) = Self.batch(model.config, count: 16, seed: 13)
            let session = try TrainingSession(model: model, batch: 2, length: 8, adapter: adapter)
            let loss = try session.computeGradients(inputs: inputs, targets: targets)
            let merged = try TransformerLM(config: model.config, parameters: TensorBuffer(model.parameters.array))
            try adapter.merge(into: merged)
            let full = try TrainingSession(model: merged, batch: 2, length: 8)
            XCTAssertEqual(try full.computeGradients(inputs: inputs, targets: targets), loss, accuracy: 1e-5, family)
            let (rank, scale) = (adapter.settings.rank, Double(adapter.settings.scale))
            for layer in 0..<model.config.numLayers {
                for target in adapter.settings.targets {
                    let w = model.layout.required(target.weightName(layer: layer))
                    let a = adapter.layout.required(LoRAAdapter.name(of: target, layer: layer, matrix: "A"))
                    let b = adapter.layout.required(LoRAAdapter.name(of: target, layer: layer, matrix: "B"))
                    let (rows, columns) = (w.shape[0], w.shape[1])
                    let dW = { (r: Int, c: Int) in Double(full.gradients.storage[w.offset + r * columns + c]) }
                    let value = { (offset: Int) in Double(adapter.parameters.storage[offset]) }
                    var expectedB = [Double](), expectedA = [Double]()
                    for r in 0..<rows { for k in 0..<rank { expectedB.append(scale * (0..<columns).reduce(0) { $0 + dW(r, $1) * value(a.offset + k * columns + $1) }) } }
                    for k in 0..<rank { for c in 0..<columns { expectedA.append(scale * (0..<rows).reduce(0) { $0 + value(b.offset + $1 * rank + k) * dW($1, c) }) } }
                    assertClose(Array(session.gradients.storage[b.range]), expectedB, absolute: 1e-6, relative: 1e-4, "\(family) \(b.name)")
                    assertClose(Array(session.gradients.storage[a.range]), expectedA, absolute: 1e-6, relative: 1e-4, "\(family) \(a.name)")
                }
            }
        }
    }

    /// QLoRA: a base kept in Q8_0 blocks trains its adapter as the dequantized twin does (the
    /// input's gradient goes through the blocks decoded a tile at a time).
    func testQuantizedBaseTrainsAsItsDequantizedTwin() throws {
        let config = ModelConfig(vocabSize: 97, contextLength: 16, dModel: 64, numLayers: 2, numHeads: 4, dFF: 96, ropeTheta: 10_000, numKVHeads: 2)
        let (quantized, storage) = try BatchDecoderTests.quantizedModel(.q8_0, config: config)
        let twin = try TransformerLM(config: config, parameters: TensorBuffer(quantized.parameters.array))
        for (name, matrix) in quantized.quantizedTensors {
            let values = twin.tensor(name)!
            for row in 0..<matrix.rows { matrix.decodeRow(row, into: values.baseAddress! + row * matrix.columns) }
        }
        let (inputs, targets) = Self.batch(config, count: 24, seed: 14)
        var gradients: [[Float]] = [], losses: [Double] = []
        for model in [quantized, twin] {
            let adapter = try Self.adapter(for: model, rank: 4, seed: 15)
            let session = try TrainingSession(model: model, batch: 2, length: 12, adapter: adapter)
            losses.append(try session.computeGradients(inputs: inputs, targets: targets))
            gradients.append(session.gradients.array)
        }
        withExtendedLifetime(storage) {}
        XCTAssertEqual(losses[0], losses[1], accuracy: 1e-5)
        assertClose(gradients[0], gradients[1].map(Double.init), absolute: 1e-5, relative: 1e-3, "QLoRA gradients against the dequantized base")
    }

    /// Dropout on the adapters' input: a round's pattern is fixed (the same loss twice, and the
    /// backward drops what the forward dropped: its gradients match finite differences of that
    /// round's loss), another round draws another, and evaluation runs without it.
    func testDropoutIsTheSameInTheForwardAndTheBackward() throws {
        let model = try InspectionTests.model("qwen3")
        let settings = LoRAAdapter.Settings(rank: 2, alpha: 3, dropout: 0.3)
        let adapter = try LoRAAdapter(settings: settings, config: model.config, seed: 20)
        var generator = SeededGenerator(seed: 21)
        for i in adapter.parameters.storage.indices { adapter.parameters.storage[i] = Float.random(in: -0.3...0.3, using: &generator) }
        let (inputs, targets) = Self.batch(model.config, count: 12, seed: 22)
        let session = try TrainingSession(model: model, batch: 2, length: 6, adapter: adapter)
        let plain = try session.loss(inputs: inputs, targets: targets)
        let dropped = try session.computeGradients(inputs: inputs, targets: targets, dropoutRound: 7)
        let gradient = session.gradients.array
        XCTAssertEqual(try session.computeGradients(inputs: inputs, targets: targets, dropoutRound: 7), dropped, "a round's pattern is fixed")
        XCTAssertNotEqual(try session.computeGradients(inputs: inputs, targets: targets, dropoutRound: 8), dropped, "another round, another pattern")
        XCTAssertNotEqual(dropped, plain)
        XCTAssertEqual(try session.computeGradients(inputs: inputs, targets: targets), plain, accuracy: 1e-6, "no round: no dropout")
        for entry in adapter.layout.entries.prefix(8) {
            let index = entry.offset + entry.count / 2, original = adapter.parameters.storage[index], h: Float = 1e-2
            adapter.parameters.storage[index] = original + h
            let up = try session.computeGradients(inputs: inputs, targets: targets, dropoutRound: 7)
            adapter.parameters.storage[index] = original - h
            let down = try session.computeGradients(inputs: inputs, targets: targets, dropoutRound: 7)
            adapter.parameters.storage[index] = original
            let numeric = (up - down) / Double(2 * h)
            XCTAssertEqual(Double(gradient[index]), numeric, accuracy: 2e-3 + 0.03 * abs(numeric), entry.name)
        }
    }

    func testPEFTFilesRoundTrip() throws {
        for family in Self.families {
            let model = try InspectionTests.model(family)
            let adapter = try Self.adapter(for: model, rank: 2, targets: [.q, .k, .down], seed: 16)
            let folder = directory + "/" + family
            try PEFTAdapter.write(adapter, to: folder, baseModel: "base")
            let read = try PEFTAdapter.read(directory: folder, config: model.config)
            XCTAssertEqual(read.settings, adapter.settings, family)
            XCTAssertEqual(read.parameters.array, adapter.parameters.array, "\(family): values (Llama's q/k rows permuted out and back)")
            let stored = try SafeTensorsFile(path: folder + "/" + PEFTAdapter.weightsFile)
            XCTAssertTrue(stored.entries.contains { $0.name == "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight" })
            XCTAssertTrue(stored.entries.contains { $0.name == "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight" })
        }
    }

    func testAdapterForAnotherModelOrBadSettingsIsRefused() throws {
        let model = try InspectionTests.model("qwen3")
        let other = try InspectionTests.model("gemma3")
        let adapter = try Self.adapter(for: other, seed: 17)
        XCTAssertThrowsError(try model.apply(adapter: adapter)) { XCTAssertTrue("\($0)".contains("made for"), "\($0)") }
        try PEFTAdapter.write(adapter, to: directory, baseModel: nil)
        XCTAssertThrowsError(try PEFTAdapter.read(directory: directory, config: model.config)) { error in
            XCTAssertTrue("\(error)".contains(PEFTAdapter.weightsFile), "\(error)")
        }
        XCTAssertThrowsError(try LoRAAdapter(settings: .init(rank: 0), config: model.config, seed: 1)) { XCTAssertTrue("\($0)".contains("--lora-rank"), "\($0)") }
        XCTAssertThrowsError(try LoRAAdapter(settings: .init(rank: 99), config: model.config, seed: 1)) { XCTAssertTrue("\($0)".contains("larger than"), "\($0)") }
        XCTAssertThrowsError(try LoRAAdapter(settings: .init(rank: 2, targets: []), config: model.config, seed: 1))
    }
}

/// Conversations rendered into ids and a loss mask: the assistant's tokens (its end-of-turn
/// marker included) are learned, the rest only read.
final class ChatDataTests: TemporaryDirectoryTestCase {
    func testOnlyTheAnswersAreLearned() throws {
        let chatML = try ChatTemplate("""
            {% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}
            """)
        // Drops an answered turn's reasoning marker once later turns follow, as Qwen 3's does.
        let dropping = try ChatTemplate("""
            {% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['role'] == 'assistant' and loop.last %}<think></think>{% endif %}{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}
            """)
        let corpus = Array("hello there. how are you? fine thanks. and you? ok.".utf8)
        let tokenizer = try corpus.withUnsafeBufferPointer {
            try BPETrainer.train(bytes: $0, options: BPETrainingOptions(vocabSize: 300, specialTokens: ["<|im_start|>", "<|im_end|>"]))
        }
        let path = directory + "/chat.jsonl"
        try Data("""
            {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}, {"role": "assistant", "content": "fine thanks"}, {"role": "user", "content": "and you?"}, {"role": "assistant", "content": "ok."}]}

            {"prompt": "how are you?", "completion": "fine"}
            """.utf8).write(to: URL(fileURLWithPath: path))
        for (template, examples) in [(chatML, 2), (dropping, 3)] {
            let data = try ChatData(path: path, template: template, tokenizer: tokenizer, bosText: "", eosText: "", trainOnPrompt: false)
            XCTAssertEqual(data.conversations, 2)
            // The learned stretches decoded: each answer with its end-of-turn marker.
            var learned: [String] = [], current: [Int32] = []
            for (id, mask) in zip(data.ids, data.mask) {
                if mask == 1 { current.append(id) } else if !current.isEmpty { learned.append(try tokenizer.decode(current)); current = [] }
            }
            if !current.isEmpty { learned.append(try tokenizer.decode(current)) }
            let isDropping = examples == 3
            let think = isDropping ? "<think></think>" : ""
            let expected = isDropping
                // One example per answer, each learned once (the first answer is context in the second).
                ? ["\(think)fine thanks<|im_end|>\n", "\(think)ok.<|im_end|>\n", "\(think)fine<|im_end|>\n"]
                : ["fine thanks<|im_end|>\n", "ok.<|im_end|>\n", "fine<|im_end|>\n"]
            XCTAssertEqual(learned, expected, "examples: \(examples)")
            if isDropping { XCTAssertGreaterThan(data.ids.count, try ChatData(path: path, template: chatML, tokenizer: tokenizer, bosText: "", eosText: "", trainOnPrompt: false).ids.count, "the first answer is read twice") }
            let everything = try ChatData(path: path, template: template, tokenizer: tokenizer, bosText: "", eosText: "", trainOnPrompt: true)
            XCTAssertEqual(everything.ids, data.ids)
            XCTAssertTrue(everything.mask.allSatisfy { $0 == 1 })
        }
    }
}
