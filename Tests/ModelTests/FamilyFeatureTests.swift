import Foundation
import Kernels
@testable import Model
import TensorIO
import TestSupport
import XCTest

/// Every feature a family adds is needed: switched off one at a time (the rest of the model and
/// its weights unchanged), each moves the fixture's logits past the tolerance the real model
/// meets. A feature whose removal changed nothing would be a feature the tests do not check.
final class FamilyFeatureTests: XCTestCase {
    /// `model` with `architecture`, every tensor both layouts have copied by name (a tensor the
    /// new layout lacks is dropped; one it adds keeps its initial value).
    static func variant(of model: TransformerLM, _ change: (inout Architecture) -> Void) throws -> TransformerLM {
        var config = model.config
        change(&config.architecture)
        let layout = ParameterLayout(config: config)
        let parameters = TensorBuffer(count: layout.totalCount)
        for entry in layout.entries {
            if let source = model.tensor(entry.name) { _ = parameters.slice(entry.offset, entry.count).update(fromContentsOf: source) }
        }
        return try TransformerLM(config: config, parameters: parameters)
    }

    /// The largest |Δ| of the logits of `ids` (all positions, or the last) against `expected`.
    static func gap(_ model: TransformerLM, ids: [Int32], expected: [Float], lastOnly: Bool) throws -> Float {
        let logits = try model.forward(tokens: ids, batch: 1, length: ids.count)
        let compared = lastOnly ? Array(logits.suffix(model.config.vocabSize)) : logits
        return zip(compared, expected).map { abs($0 - $1) }.max()!
    }

    func testEveryGemma3FeatureIsNeededByTheFixture() throws {
        let fixture = try Fixtures.requireSharedData("gemma3")
        let model = try Gemma3Tests.dequantized()
        let ids = try NPYFile(path: fixture + "/plain_ids.npy").integers().map { Int32($0) }
        let expected = try NPYFile(path: fixture + "/plain_logits.npy").floats()
        let bound = 1e-4 * expected.map(abs).max()!
        let changes: [(String, (inout Architecture) -> Void)] = [
            ("QK-norm", { $0.qkNorm = false }), ("post-norms", { $0.postNorms = false }), ("gated GELU", { $0.activation = .silu }),
            ("embedding scale", { $0.embeddingScale = nil }), ("RoPE on halves", { $0.ropeStyle = .interleaved }),
            ("local RoPE base", { $0.localRopeTheta = nil }),
        ]
        for (feature, change) in changes {
            let gap = try Self.gap(try Self.variant(of: model, change), ids: ids, expected: expected, lastOnly: false)
            print("Gemma 3 without its \(feature): max |Δ| of the logits \(gap) (bound \(bound))")
            XCTAssertGreaterThan(gap, bound, "without its \(feature) Gemma 3 still meets the fixture")
        }
        // The `1 + w` gains: read as `w`, the model is another.
        let asStored = try Self.variant(of: model) { _ in }
        for entry in asStored.layout.entries where entry.role == .gain {
            let gains = asStored.parameters.slice(entry.offset, entry.count)
            for i in gains.indices { gains[i] -= 1 }
        }
        let offsetGap = try Self.gap(asStored, ids: ids, expected: expected, lastOnly: false)
        print("Gemma 3 with its gains read as w rather than 1 + w: max |Δ| \(offsetGap)")
        XCTAssertGreaterThan(offsetGap, bound)
        // The window needs a prompt longer than it.
        let windowIDs = try NPYFile(path: fixture + "/window_ids.npy").integers().map { Int32($0) }
        let windowExpected = try NPYFile(path: fixture + "/window_logits.npy").floats()
        let global = try Self.variant(of: model) { $0.slidingWindow = nil; $0.slidingLayers = [] }
        let windowGap = try Self.gap(global, ids: windowIDs, expected: windowExpected, lastOnly: true)
        print("Gemma 3 without its sliding window, 739 tokens: max |Δ| of the last logits \(windowGap)")
        XCTAssertGreaterThan(windowGap, 1e-4 * windowExpected.map(abs).max()!)
    }

    func testEveryQwenFeatureIsNeededByTheFixtures() throws {
        for (name, changes) in [("qwen3-tiny", [("QK-norm", { (a: inout Architecture) in a.qkNorm = false }), ("RoPE on halves", { $0.ropeStyle = .interleaved })]),
                                ("qwen2-tiny", [("q/k/v biases", { (a: inout Architecture) in a.qkvBias = false }), ("RoPE on halves", { $0.ropeStyle = .interleaved })])] {
            let fixture = try Fixtures.requireSharedData(name)
            let model = try HuggingFaceCheckpoint.load(directory: fixture)
            let ids = try NPYFile(path: fixture + "/expected_ids_2.npy").integers().map { Int32($0) }
            let expected = try NPYFile(path: fixture + "/expected_logits_2.npy").floats()
            for (feature, change) in changes {
                let gap = try Self.gap(try Self.variant(of: model, change), ids: ids, expected: expected, lastOnly: false)
                print("\(name) without its \(feature): max |Δ| of the logits \(gap)")
                XCTAssertGreaterThan(gap, 1e-2, "\(name) without its \(feature) still meets the fixture")
            }
        }
    }
}
