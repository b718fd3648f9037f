import Foundation
import Kernels
import Model
import TensorIO
import TestSupport
import XCTest

/// The real SmolLM2-135M-Instruct (GGUF Q4_1, fetched by `scripts/fetch-models.sh`) against
/// transformers on the same dequantized weights (`../shared/data/smollm2`).
final class SmolLM2Tests: XCTestCase {
    /// `count` greedy ids after `prompt` through the KV cache (EOS not a stop).
    static func greedy(_ count: Int, after prompt: [Int32], in session: InferenceSession) throws -> [Int32] {
        var next = try session.append(prompt)
        var ids: [Int32] = []
        for _ in 0..<count {
            let id = Int32(next.indices.max { next[$0] < next[$1] }!)
            ids.append(id)
            next = Array(try session.step(id))
        }
        return ids
    }

    func testLogitsAndGreedyContinuationsEqualTransformers() throws {
        let fixture = try Fixtures.requireSharedData("smollm2")
        let model = try GGUFCheckpoint.load(path: try Fixtures.requireSmolLM2())
        let config = model.config
        XCTAssertEqual([config.numLayers, config.dModel, config.numHeads, config.numKVHeads, config.dFF, config.vocabSize],
                       [30, 576, 9, 3, 1_536, 49_152])
        func ids(_ name: String) throws -> [Int32] { try NPYFile(path: fixture + "/\(name).npy").integers().map { Int32($0) } }
        let vocab = config.vocabSize
        let threads = Threading.count
        defer { Threading.count = threads }
        for (name, allPositions) in [("plain", true), ("chat", false)] {
            let prompt = try ids(name + "_ids")
            let expected = try NPYFile(path: fixture + "/\(name)_logits.npy").floats()
            // One thread and two: OpenBLAS splits its GEMMs differently, the sums stay within bounds.
            for count in [1, 2] {
                Threading.count = count
                let logits = try model.forward(tokens: prompt, batch: 1, length: prompt.count)
                let compared = allPositions ? logits : Array(logits[((prompt.count - 1) * vocab)...])
                XCTAssertEqual(compared.count, expected.count, name)
                let worst = zip(compared, expected).map { abs($0 - $1) }.max()!
                print("SmolLM2 \(name), \(count) thread(s): max |Δ| of the logits against transformers \(worst)")
                XCTAssertLessThan(worst, 1e-4, "\(name) logits at \(count) thread(s)")
            }
            Threading.count = threads
            // Greedy, EOS not a stop, through the KV cache.
            let session = InferenceSession(model: model)
            XCTAssertEqual(try Self.greedy(24, after: prompt, in: session), try ids(name + "_greedy24"), "\(name): greedy continuation")
        }
    }

    /// The real file with its Q4_1 and Q8_0 blocks kept (no Float32 copy): the logits of the
    /// dequantized model within 1e-3 (Float32 activations: in practice about 1e-5), the same
    /// greedy continuation through the decode kernels.
    func testWithBlocksKeptTheLogitsAndGreedyTokensAreTheDequantizedModels() throws {
        let fixture = try Fixtures.requireSharedData("smollm2")
        let model = try GGUFCheckpoint.load(file: try GGUFFile(path: try Fixtures.requireSmolLM2()), keepQuantized: true)
        XCTAssertEqual(model.quantizedTensors.count, 30 * 7 + 2, "every projection, the embedding and the tied head")
        func ids(_ name: String) throws -> [Int32] { try NPYFile(path: fixture + "/\(name).npy").integers().map { Int32($0) } }
        let (prompt, _, worst) = try ModelFactory.logitGap(model, ids: fixture + "/plain_ids.npy", logits: fixture + "/plain_logits.npy",
                                                          label: "SmolLM2 with blocks kept")
        XCTAssertLessThan(worst, 1e-3)
        let session = InferenceSession(model: model)
        XCTAssertEqual(try Self.greedy(24, after: prompt, in: session), try ids("plain_greedy24"))
    }

    /// llama.cpp's design (activations rounded to 8 bits in the decode products): the logits
    /// move, here by up to 2.9 over the plain prompt's 12 positions (llama.cpp 0.3.36's own differ
    /// from transformers' by up to 1.36 on the same positions: a factor of two not yet explained,
    /// one reason this is not the default), the greedy choice at every position does not. The
    /// bound only catches a broken kernel.
    func testEightBitActivationsMoveTheLogitsButNotTheGreedyChoice() throws {
        let fixture = try Fixtures.requireSharedData("smollm2")
        let model = try GGUFCheckpoint.load(file: try GGUFFile(path: try Fixtures.requireSmolLM2()), keepQuantized: true, eightBitActivations: true)
        let prompt = try NPYFile(path: fixture + "/plain_ids.npy").integers().map { Int32($0) }
        let expected = try NPYFile(path: fixture + "/plain_logits.npy").floats()
        let vocab = model.config.vocabSize
        // One token at a time, so every position goes through the decode products.
        let session = InferenceSession(model: model)
        var worst: Float = 0
        for (position, id) in prompt.enumerated() {
            let logits = Array(try session.step(id))
            let reference = Array(expected[(position * vocab)..<((position + 1) * vocab)])
            worst = max(worst, zip(logits, reference).map { abs($0 - $1) }.max()!)
            XCTAssertEqual(logits.indices.max { logits[$0] < logits[$1] }, reference.indices.max { reference[$0] < reference[$1] }, "argmax at \(position)")
        }
        print("SmolLM2 with 8-bit activations: max |Δ| of the logits against transformers \(worst) (llama.cpp 0.3.36: 1.36 on these positions)")
        XCTAssertLessThan(worst, 5)
    }
}
