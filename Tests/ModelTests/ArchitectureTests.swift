import Foundation
import Kernels
@testable import Model
import TestSupport
import Verification
import XCTest

/// Each family's block, built from its ``Architecture`` on tiny random weights: the forward
/// against the plain-loop reference in Double, the backward against finite differences of that
/// reference, and the cached decode against the full forward (sliding windows included).
final class ArchitectureTests: XCTestCase {
    /// Tiny configurations of each family: stated head sizes wider than d/H, grouped-query heads,
    /// a 3-position window over 7-token sequences, a score scale other than 1/√d.
    static func config(_ family: String) -> ModelConfig {
        var config = ModelConfig(vocabSize: 29, contextLength: 12, dModel: 16, numLayers: 3, numHeads: 4, dFF: 20,
                                 ropeTheta: 1_000, numKVHeads: 2, normEps: 1e-6)
        switch family {
        case "qwen2":
            config.architecture = ModelFamily.qwen2Architecture(tied: false)
        case "qwen3":
            config.architecture = ModelFamily.qwen3Architecture(tied: true)
            config.architecture.headDim = 6
        case "gemma3":
            config.numKVHeads = 1
            config.architecture = ModelFamily.gemma3Architecture(dModel: 16, layers: 3, window: 3, sliding: [true, true, false])
            config.architecture.headDim = 8
            config.architecture.localRopeTheta = 50
            config.architecture.globalRopeScale = 2
            config.architecture.attentionScale = 0.3
        default:
            preconditionFailure("no tiny \(family)")
        }
        return config
    }

    static let families = ["qwen2", "qwen3", "gemma3"]

    /// A model whose gains and biases are far from 1 and 0 (which would hide a missing term).
    static func model(_ family: String, seed: UInt64, config stated: ModelConfig? = nil) throws -> TransformerLM {
        let model = try TransformerLM(config: stated ?? config(family), seed: seed)
        var generator = SeededGenerator(seed: seed + 100)
        for entry in model.layout.entries where entry.role == .gain || entry.role == .bias {
            let values = model.parameters.slice(entry.offset, entry.count)
            for i in values.indices { values[i] = entry.role == .gain ? Float.random(in: 0.5...1.5, using: &generator) : Float.random(in: -0.5...0.5, using: &generator) }
        }
        return model
    }

    func testForwardEqualsTheReferenceInDouble() throws {
        for family in Self.families {
            let model = try Self.model(family, seed: 3)
            let (batch, length) = (2, 7)
            let tokens = ModelFactory.tokens(batch * length, vocab: model.config.vocabSize, seed: 4)
            let logits = try model.forward(tokens: tokens, batch: batch, length: length)
            let reference = ReferenceModel.logits(model, tokens: tokens, batch: batch, length: length)
            assertClose(logits, reference, absolute: 2e-5, relative: 1e-4, "\(family) logits against the reference")
        }
    }

    func testBackwardMatchesFiniteDifferencesOfTheReference() throws {
        for (index, family) in Self.families.enumerated() {
            try ModelFactory.checkBackwardAgainstFiniteDifferences(try Self.model(family, seed: 10 + UInt64(index)), batch: 2, length: 7,
                                                                   seed: 20 + UInt64(index))
        }
    }

    /// One token at a time through the KV cache (the window reading only its keys) gives the
    /// full forward's logits at every position, and so does a prefill in two chunks.
    func testCachedDecodeEqualsTheFullForward() throws {
        for family in Self.families {
            let model = try Self.model(family, seed: 5)
            let tokens = ModelFactory.tokens(11, vocab: model.config.vocabSize, seed: 6)
            let vocab = model.config.vocabSize
            let full = try model.forward(tokens: tokens, batch: 1, length: tokens.count)
            let session = InferenceSession(model: model)
            for (position, token) in tokens.enumerated() {
                let step = Array(try session.step(token))
                assertClose(step, Array(full[(position * vocab)..<((position + 1) * vocab)]), absolute: 1e-5, relative: 1e-5,
                            "\(family): cached step at \(position)")
            }
            let chunked = InferenceSession(model: model)
            _ = try chunked.append(Array(tokens[0..<5]))
            let last = Array(try chunked.append(Array(tokens[5...])))
            assertClose(last, Array(full[((tokens.count - 1) * vocab)...]), absolute: 1e-5, relative: 1e-5, "\(family): two-chunk prefill")
        }
    }

    /// A sliding layer keeps `window − 1 + margin + chunk` rows and moves the visible ones to the
    /// front when a chunk would not fit: 40 positions in chunks of 1 to 3 through a cache whose
    /// sliding layers keep 7 rows give the full forward's logits; a rewind within the margin keeps
    /// the positions, one past it forgets them all.
    func testSlidingLayersKeepOnlyTheirWindow() throws {
        var config = Self.config("gemma3")
        config.contextLength = 40
        let model = try TransformerLM(config: config, parameters: try Self.model("gemma3", seed: 8).parameters)
        let cache = KVCache(config: config, maxChunk: 3, rewindMargin: 2)
        XCTAssertEqual(cache.rowsPerLayer, [3 - 1 + 2 + 3, 7, 40])
        XCTAssertEqual(cache.bytes, 8 * (7 + 7 + 40) * config.kvDim)
        let tokens = ModelFactory.tokens(40, vocab: config.vocabSize, seed: 9)
        let vocab = config.vocabSize
        let full = try model.forward(tokens: tokens, batch: 1, length: tokens.count)
        let activations = ForwardActivations(config: config, rows: 3, keys: 40, mode: .inference, kernel: .standard)
        let logits = TensorBuffer(count: 3 * vocab)
        var position = 0, chunk = 1
        while position < tokens.count {
            let count = min(chunk, tokens.count - position)
            tokens[position..<(position + count)].withUnsafeBufferPointer { ids in
                model.forward(tokens: ids, batch: 1, into: activations, cache: cache, logitRows: 0..<count,
                              logits: logits.matrix(at: 0, rows: count, columns: vocab))
            }
            assertClose(Array(logits.view(0, count * vocab)), Array(full[(position * vocab)..<((position + count) * vocab)]),
                        absolute: 1e-5, relative: 1e-5, "positions \(position)..<\(position + count)")
            position += count
            chunk = chunk % 3 + 1
        }
        XCTAssertEqual(cache.truncate(to: 38), 38, "two positions back: within the margin")
        XCTAssertEqual(cache.length, 38)
        XCTAssertEqual(cache.truncate(to: 30), 0, "past the margin the window before position 30 is gone")
        XCTAssertEqual(cache.length, 0)
    }

    /// The batched decode step of the server (``BatchDecoder``): two Gemma-shaped streams decoded
    /// together, each query reading only its window's keys, give each stream's full forward.
    func testBatchedDecodeOfSlidingLayersEqualsTheFullForward() throws {
        var config = Self.config("gemma3")
        config.contextLength = 24
        let model = try TransformerLM(config: config, parameters: try Self.model("gemma3", seed: 12, config: config).parameters)
        let vocab = config.vocabSize
        let prompts = [ModelFactory.tokens(4, vocab: vocab, seed: 13), ModelFactory.tokens(7, vocab: vocab, seed: 14)]
        let decoder = try BatchDecoder(model: model, slots: 2)
        var sequences = prompts
        for (slot, prompt) in prompts.enumerated() { _ = try decoder.prefill(slot: slot, tokens: prompt) }
        for step in 0..<6 {
            let next = (0..<2).map { Int32((step * 5 + $0 * 3) % vocab) }
            let logits = Array(try decoder.step([(0, next[0]), (1, next[1])]))
            for stream in 0..<2 {
                sequences[stream].append(next[stream])
                let full = try model.forward(tokens: sequences[stream], batch: 1, length: sequences[stream].count)
                assertClose(Array(logits[(stream * vocab)..<((stream + 1) * vocab)]), Array(full.suffix(vocab)),
                            absolute: 1e-5, relative: 1e-5, "stream \(stream), step \(step)")
            }
        }
    }
}
