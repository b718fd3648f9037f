import Foundation
import Kernels
@testable import Model
import TensorIO
import TestSupport
import XCTest

final class CheckpointTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-\(UUID().uuidString)").path
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func assertModelError(_ body: @autoclosure () throws -> Any, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(text), "'\(error)' should mention '\(text)'", file: file, line: line)
        }
    }

    func testSaveThenLoadGivesTheSameLogits() throws {
        let model = try ModelFactory.model()
        try Checkpoint.save(model, directory: directory)
        let loaded = try Checkpoint.load(directory: directory)
        XCTAssertEqual(loaded.config, model.config)
        XCTAssertEqual(loaded.parameters.array, model.parameters.array)
        let tokens = ModelFactory.tokens(10, vocab: 53, seed: 5)
        XCTAssertEqual(try loaded.forward(tokens: tokens, batch: 1, length: 10), try model.forward(tokens: tokens, batch: 1, length: 10))
        // CS336 names and [out, in] shapes on disk.
        let file = try SafeTensorsFile(path: directory + "/model.safetensors")
        XCTAssertEqual(try file.entry("layers.1.attn.k_proj.weight").shape, [16, 32])
        XCTAssertEqual(try file.entry("layers.0.ffn.w2.weight").shape, [32, 44])
        XCTAssertEqual(file.entries.count, 3 + 2 * 9)
    }

    func testCheckpointErrorsNameTheTensor() throws {
        let model = try ModelFactory.model()
        try Checkpoint.save(model, directory: directory)
        let weights = directory + "/model.safetensors"
        let original = try SafeTensorsFile(path: weights)
        func rewrite(_ transform: ([NamedTensor]) -> [NamedTensor]) throws {
            let tensors = try original.entries.map { NamedTensor(name: $0.name, shape: $0.shape, values: try original.floats($0.name)) }
            try SafeTensorsWriter.write(transform(tensors), to: weights)
        }
        try rewrite { $0.filter { $0.name != "layers.1.ln2.weight" } }
        assertModelError(try Checkpoint.load(directory: directory), contains: "missing tensor 'layers.1.ln2.weight'")
        try rewrite { $0 + [NamedTensor(name: "layers.2.ln1.weight", shape: [32], values: [Float](repeating: 1, count: 32))] }
        assertModelError(try Checkpoint.load(directory: directory), contains: "unexpected tensor 'layers.2.ln1.weight'")
        try rewrite { $0.map { $0.name == "lm_head.weight" ? NamedTensor(name: $0.name, shape: [32, 53], values: $0.values) : $0 } }
        assertModelError(try Checkpoint.load(directory: directory), contains: "'lm_head.weight' has shape [32, 53], expected [53, 32]")
        try Data("not a safetensors file".utf8).write(to: URL(fileURLWithPath: weights))
        assertModelError(try Checkpoint.load(directory: directory), contains: "model.safetensors")
    }

    func testConfigErrorsNameTheKey() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/config.json"
        func write(_ text: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) }
        let base = #""vocab_size": 10, "context_length": 8, "d_model": 16, "num_layers": 1, "d_ff": 8, "rope_theta": 10000"#
        try write("{\(base), \"num_heads\": 3}")
        assertModelError(try ModelConfig.load(path: path), contains: "d_model 16 is not divisible by num_heads 3")
        try write("{\(base), \"num_heads\": 4, \"num_kv_heads\": 3}")
        assertModelError(try ModelConfig.load(path: path), contains: "num_heads 4 is not a multiple of num_kv_heads 3")
        try write("{\(base), \"num_heads\": 16}")
        assertModelError(try ModelConfig.load(path: path), contains: "must be even")
        try write(#"{"vocab_size": 10}"#)
        assertModelError(try ModelConfig.load(path: path), contains: "missing key")
        try write("{\(base), \"num_heads\": \"four\"}")
        assertModelError(try ModelConfig.load(path: path), contains: "num_heads")
        try write("{\(base.replacingOccurrences(of: "\"num_layers\": 1", with: "\"num_layers\": 0")), \"num_heads\": 4}")
        assertModelError(try ModelConfig.load(path: path), contains: "num_layers must be positive")
        try write("{\(base), \"num_heads\": 4, \"norm_eps\": 1e-6, \"num_kv_heads\": 2}")
        let config = try ModelConfig.load(path: path)
        XCTAssertEqual(config.numKVHeads, 2)
        XCTAssertEqual(config.normEps, 1e-6)
    }

    func testInitialisationFollowsTheHandout() throws {
        let config = ModelConfig(vocabSize: 500, contextLength: 16, dModel: 64, numLayers: 1, numHeads: 4, dFF: 128, ropeTheta: 10_000)
        let model = try TransformerLM(config: config, seed: 3)
        let w1 = Array(model.tensor("layers.0.ffn.w1.weight")!)
        let sigma = (2.0 / (64 + 128)).squareRoot()
        let std = (w1.map { Double($0 * $0) }.reduce(0, +) / Double(w1.count)).squareRoot()
        // Truncation at ±3σ shrinks the standard deviation by about 1.3%.
        XCTAssertEqual(std, sigma * 0.9866, accuracy: sigma * 0.03)
        XCTAssertLessThanOrEqual(w1.map { abs(Double($0)) }.max()!, 3 * sigma + 1e-6)
        let embeddings = Array(model.tensor("token_embeddings.weight")!)
        XCTAssertLessThanOrEqual(embeddings.map(abs).max()!, 3)
        XCTAssertEqual(Array(model.tensor("ln_final.weight")!), [Float](repeating: 1, count: 64))
        // Same seed, same weights; another seed, others.
        XCTAssertEqual(try TransformerLM(config: config, seed: 3).parameters.array, model.parameters.array)
        XCTAssertNotEqual(try TransformerLM(config: config, seed: 4).parameters.array, model.parameters.array)
    }

    func testLossAtInitialisationIsNearLogVocab() throws {
        let config = ModelConfig(vocabSize: 500, contextLength: 16, dModel: 64, numLayers: 2, numHeads: 4, dFF: 128, ropeTheta: 10_000)
        let model = try TransformerLM(config: config, seed: 5)
        let tokens = ModelFactory.tokens(16, vocab: 500, seed: 6)
        let logits = try model.forward(tokens: tokens, batch: 1, length: 16)
        var loss = 0.0
        for t in 0..<15 {
            let row = logits[(t * 500)..<((t + 1) * 500)].map(Double.init)
            let maximum = row.max()!
            loss += log(row.map { exp($0 - maximum) }.reduce(0, +)) + maximum - row[Int(tokens[t + 1])]
        }
        XCTAssertEqual(loss / 15, log(500), accuracy: 0.5)
    }
}
