import Foundation
import Kernels
@testable import Model
import ReferenceKernels
import TestSupport
import Verification
import XCTest

/// The views inside a model, on each family's tiny random model: the logit lens against the
/// Double reference model cut after each layer, the attribution's parts against Double
/// computations and their sum against the logit, and activation patching against what it must
/// give (nothing patched: the corrupted run; everything: the clean one; one site in a crowd:
/// the same as alone; a head in the last layer: a Double computation).
final class InspectionTests: XCTestCase {
    static let families = ["llama"] + ArchitectureTests.families

    static func model(_ family: String, seed: UInt64 = 11) throws -> TransformerLM {
        guard family != "llama" else {
            return try ArchitectureTests.model("qwen2", seed: seed, config: ModelConfig(vocabSize: 29, contextLength: 12, dModel: 16, numLayers: 3,
                                                                                         numHeads: 4, dFF: 20, ropeTheta: 1_000, numKVHeads: 2))
        }
        return try ArchitectureTests.model(family, seed: seed)
    }

    /// Softmax in Double of one row.
    static func softmax(_ logits: ArraySlice<Double>) -> [Double] {
        let top = logits.max()!
        let exps = logits.map { exp($0 - top) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }

    func testLogitLensEqualsTheReferenceCutAfterEachLayer() throws {
        for family in Self.families {
            let model = try Self.model(family)
            let config = model.config, length = 7, v = config.vocabSize
            let tokens = ModelFactory.tokens(length, vocab: v, seed: 5)
            let lens = try LogitLens(try InspectedForward(model, tokens: tokens), top: 3)
            XCTAssertEqual(lens.layers, Array(0...config.numLayers))
            for (i, layer) in lens.layers.enumerated() {
                let blocks = (0..<layer).map { ReferenceModel.blockWeights(model, layer: $0) }
                let shape = ReferenceModel.shape(config)
                let logits = Reference.transformerLM(tokens: tokens.map(Int.init), embedding: ReferenceModel.tensor(model, "token_embeddings.weight"),
                                                     blocks: blocks, finalNorm: ReferenceModel.tensor(model, "ln_final.weight"),
                                                     head: ReferenceModel.tensor(model, ReferenceModel.headName(config)),
                                                     batch: 1, length: length, vocab: v, shape: shape)
                for (j, position) in lens.positions.enumerated() {
                    let expected = Self.softmax(logits[(position * v)..<((position + 1) * v)])
                    let cell = lens.cells[i][j]
                    let order = expected.indices.sorted { expected[$0] > expected[$1] }
                    XCTAssertEqual(cell.top.map { Int($0.token) }, Array(order.prefix(3)), "\(family) layer \(layer) position \(position)")
                    assertClose(cell.top.map(\.probability), order.prefix(3).map { expected[$0] }, absolute: 1e-5, "\(family) layer \(layer) position \(position)")
                    XCTAssertEqual(cell.answerProbability, expected[Int(lens.answers[j])], accuracy: 1e-5)
                }
            }
            // The last read-out is the model's own prediction: rank 0 everywhere, settled there at the latest.
            XCTAssertTrue(lens.cells.last!.allSatisfy { $0.answerRank == 0 })
            XCTAssertTrue(lens.settledLayer.allSatisfy { $0 != nil && $0! <= config.numLayers })
        }
    }

    func testAttributionPartsAddUpToTheLogitAndEachEqualsADoubleComputation() throws {
        for family in Self.families {
            let model = try Self.model(family)
            let config = model.config, length = 6
            let tokens = ModelFactory.tokens(length, vocab: config.vocabSize, seed: 8)
            let run = try InspectedForward(model, tokens: tokens)
            for (token, position) in [(Int32(3), length - 1), (Int32(17), 2)] {
                let parts = try DirectLogitAttribution(run, token: token, position: position)
                // The parts add up to the logit, which is the model's own (before a softcap).
                XCTAssertEqual(parts.total, parts.logit, accuracy: 1e-4 * max(1, abs(parts.logit)), family)
                var modelLogit = Double(run.logits[position, Int(token)])
                if let cap = config.architecture.finalLogitSoftcap.map(Double.init) { modelLogit = cap * atanh(modelLogit / cap) }
                XCTAssertEqual(parts.logit, modelLogit, accuracy: 1e-4 * max(1, abs(modelLogit)), family)
                // Each head's part in Double: u · g_post·s_post ⊙ (context_h · W_O[:, h]ᵀ).
                let c = config.dModel, d = config.headDim
                let head = ReferenceModel.tensor(model, ReferenceModel.headName(config))
                let gain = ReferenceModel.tensor(model, "ln_final.weight")
                let u = (0..<c).map { head[Int(token) * c + $0] * gain[$0] * parts.finalScale }
                for layer in 0..<config.numLayers {
                    let a = run.layer(layer)
                    let output = ReferenceModel.tensor(model, "layers.\(layer).attn.output_proj.weight")
                    let postGain = config.architecture.postNorms ? ReferenceModel.tensor(model, "layers.\(layer).post_attn_norm.weight") : nil
                    let postScale = a.postAttention.map { Double($0.rstd[position]) } ?? 1
                    for h in 0..<config.numHeads {
                        var expected = 0.0
                        for row in 0..<c {
                            var value = 0.0
                            for k in 0..<d { value += Double(a.context[position, h * d + k]) * output[row * config.attentionWidth + h * d + k] }
                            expected += u[row] * value * (postGain?[row] ?? 1) * postScale
                        }
                        XCTAssertEqual(parts.heads[layer][h], expected, accuracy: 1e-5 * max(1, abs(expected)), "\(family) layer \(layer) head \(h)")
                    }
                }
                var embedding = 0.0
                for i in 0..<c { embedding += u[i] * Double(run.residual(0)[position, i]) }
                XCTAssertEqual(parts.embedding, embedding, accuracy: 1e-5 * max(1, abs(embedding)))
            }
            XCTAssertThrowsError(try DirectLogitAttribution(run, token: Int32(config.vocabSize))) { XCTAssertTrue("\($0)".contains("outside the vocabulary")) }
        }
    }

    func testPatchingNothingGivesTheCorruptedRunAndEverythingTheClean() throws {
        for family in Self.families {
            let model = try Self.model(family)
            let config = model.config, length = 5
            let clean = ModelFactory.tokens(length, vocab: config.vocabSize, seed: 21)
            var corrupted = clean
            corrupted[2] = (clean[2] + 5) % Int32(config.vocabSize)
            let all = Array(0..<length)
            let sites: [ActivationPatching.Site] = [.none, .stream(entering: config.numLayers, positions: all), .stream(entering: 0, positions: all),
                                                    .stream(entering: 1, positions: [0, 1]), .head(layer: 1, head: 2), .feedForward(layer: 0)]
            let patching = try ActivationPatching(model, clean: clean, corrupted: corrupted, sites: sites)
            let outcomes = patching.outcomes
            XCTAssertEqual(outcomes[0].probability, patching.corrupted.probability, accuracy: 1e-6, family)
            XCTAssertEqual(outcomes[1].probability, patching.clean.probability, accuracy: 1e-6, family)
            XCTAssertEqual(outcomes[2].probability, patching.clean.probability, accuracy: 1e-5, "\(family): every embedding patched is the clean run")
            // Positions before the corrupted token are the same in both runs: patching them changes nothing.
            XCTAssertEqual(outcomes[3].probability, patching.corrupted.probability, accuracy: 1e-6, family)
            XCTAssertEqual(patching.recovered(outcomes[1]), 1, accuracy: 1e-4)
            // A site's outcome in a batch of many is the same as alone.
            for (index, site) in sites.enumerated() {
                let alone = try ActivationPatching(model, clean: clean, corrupted: corrupted, sites: [site])
                XCTAssertEqual(alone.outcomes[0].probability, outcomes[index].probability, accuracy: 1e-6, "\(family) \(site)")
                XCTAssertEqual(alone.outcomes[0].logitDifference, outcomes[index].logitDifference, accuracy: 1e-5, "\(family) \(site)")
            }
        }
    }

    /// A head of the last layer, with that layer's feed-forward silenced: the patched stream is
    /// the corrupted one plus the head's change through `output_proj` (normed where the family
    /// norms the branch), read out in Double.
    func testPatchingAHeadOfTheLastLayerMatchesADoubleComputation() throws {
        for family in Self.families {
            let model = try Self.model(family)
            let config = model.config, length = 5, c = config.dModel, d = config.headDim, last = config.numLayers - 1
            model.tensor("layers.\(last).ffn.w2.weight")!.update(repeating: 0)
            let clean = ModelFactory.tokens(length, vocab: config.vocabSize, seed: 31)
            var corrupted = clean
            corrupted[1] = (clean[1] + 3) % Int32(config.vocabSize)
            let head = 1
            let patching = try ActivationPatching(model, clean: clean, corrupted: corrupted, sites: [.head(layer: last, head: head)])
            let cleanRun = try InspectedForward(model, tokens: clean), corruptedRun = try InspectedForward(model, tokens: corrupted)
            let output = ReferenceModel.tensor(model, "layers.\(last).attn.output_proj.weight")
            let p = length - 1
            let (a, cleanLayer) = (corruptedRun.layer(last), cleanRun.layer(last))
            // The branch after the change, at the last position.
            var branch = (0..<c).map { row in Double(a.postAttention?.raw[p, row] ?? (a.afterAttention[p, row] - a.input[p, row])) }
            for row in 0..<c {
                for k in 0..<d {
                    branch[row] += (Double(cleanLayer.context[p, head * d + k]) - Double(a.context[p, head * d + k])) * output[row * config.attentionWidth + head * d + k]
                }
            }
            if config.architecture.postNorms {
                let gain = ReferenceModel.tensor(model, "layers.\(last).post_attn_norm.weight")
                let normed = Reference.rmsNorm(branch, weight: gain, rows: 1, dim: c, epsilon: Double(config.normEps))
                branch = normed
                // The silenced feed-forward's post-norm of zeros adds nothing.
            }
            let stream = (0..<c).map { Double(a.input[p, $0]) + branch[$0] }
            let normed = Reference.rmsNorm(stream, weight: ReferenceModel.tensor(model, "ln_final.weight"), rows: 1, dim: c, epsilon: Double(config.normEps))
            var logits = Reference.linear(normed, weight: ReferenceModel.tensor(model, ReferenceModel.headName(config)), rows: 1, inFeatures: c,
                                          outFeatures: config.vocabSize)
            if let cap = config.architecture.finalLogitSoftcap.map(Double.init) { logits = logits.map { cap * tanh($0 / cap) } }
            let expected = Self.softmax(logits[...])[Int(patching.cleanAnswer)]
            XCTAssertEqual(patching.outcomes[0].probability, expected, accuracy: 2e-5, family)
        }
    }

    func testBadSitesAndPromptsAreNamed() throws {
        let model = try Self.model("llama")
        let tokens = ModelFactory.tokens(4, vocab: model.config.vocabSize, seed: 1)
        for (clean, corrupted, site, needle) in [
            (tokens, Array(tokens.prefix(3)), ActivationPatching.Site.none, "4 tokens and the corrupted one 3"),
            (tokens, tokens, .stream(entering: 9, positions: [0]), "layer 9"),
            (tokens, tokens, .stream(entering: 1, positions: [4]), "position 4"),
            (tokens, tokens, .head(layer: 0, head: 4), "head 4"),
        ] as [([Int32], [Int32], ActivationPatching.Site, String)] {
            XCTAssertThrowsError(try ActivationPatching(model, clean: clean, corrupted: corrupted, sites: [site])) {
                XCTAssertTrue("\($0)".contains(needle), "\($0)")
            }
        }
        let run = try InspectedForward(model, tokens: tokens)
        XCTAssertThrowsError(try LogitLens(run, layers: [4])) { XCTAssertTrue("\($0)".contains("layer 4")) }
        XCTAssertThrowsError(try LogitLens(run, positions: [7])) { XCTAssertTrue("\($0)".contains("position 7")) }
        XCTAssertThrowsError(try InspectedForward(model, tokens: [])) { XCTAssertTrue("\($0)".contains("positive")) }
    }
}

/// The two numbers of a head's attention, on weights whose answers are known.
final class AttentionStatisticsTests: XCTestCase {
    func testPreviousTokenFirstTokenAndEvenHeads() {
        let t = 4
        var previous = [Float](repeating: 0, count: t * t), first = previous, even = previous
        for q in 0..<t {
            previous[q * t + max(0, q - 1)] = 1
            first[q * t] = 1
            for k in 0...q { even[q * t + k] = 1 / Float(q + 1) }
        }
        XCTAssertEqual(AttentionStatistics(weights: previous, length: t), AttentionStatistics(weights: previous, length: t))
        XCTAssertEqual(AttentionStatistics(weights: previous, length: t).entropy, 0)
        XCTAssertEqual(AttentionStatistics(weights: previous, length: t).meanDistance, 3.0 / 4, accuracy: 1e-12)  // 0, 1, 1, 1
        XCTAssertEqual(AttentionStatistics(weights: first, length: t).meanDistance, 6.0 / 4, accuracy: 1e-12)  // 0, 1, 2, 3
        // Even over q + 1 keys: log₂(q + 1) bits, q / 2 back.
        XCTAssertEqual(AttentionStatistics(weights: even, length: t).entropy, (0 + 1 + log2(3.0) + 2) / 4, accuracy: 1e-6)
        XCTAssertEqual(AttentionStatistics(weights: even, length: t).meanDistance, (0 + 0.5 + 1 + 1.5) / 4, accuracy: 1e-6)
    }
}
