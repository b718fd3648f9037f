import ChatTemplate
import Foundation
import Kernels
import Model
import TensorIO
import TestSupport
import Tokenizer
import XCTest

/// `lm export gguf` and `lm quantize`: a model written as GGUF reads back as the same model, with
/// its tokenizer and template; quantized, it runs with the blocks kept and agrees with its own
/// dequantized weights.
final class GGUFExportTests: TemporaryDirectoryTestCase {
    /// A random model (rows of 64 and 96: whole blocks) with a tokenizer trained here.
    func makePretrained() throws -> PretrainedModel {
        let text = String(repeating: "Once upon a time there was a model. Hello, world! 123 ", count: 40)
        let tokenizer = try Array(text.utf8).withUnsafeBufferPointer {
            try BPETrainer.train(bytes: $0, options: BPETrainingOptions(vocabSize: 300, specialTokens: ["<|endoftext|>"]))
        }
        let config = ModelConfig(vocabSize: tokenizer.vocabularySize, contextLength: 64, dModel: 64, numLayers: 2,
                                 numHeads: 4, dFF: 96, ropeTheta: 10_000, numKVHeads: 2)
        let template = try ChatTemplate("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}")
        return PretrainedModel(model: try TransformerLM(config: config, seed: 5), tokenizer: tokenizer, chatTemplate: template,
                               bosText: "<|endoftext|>", eosText: "<|endoftext|>", path: "random")
    }

    static let sample = "Once upon a time, hello world 42 <|endoftext|> again"

    func testFloat32ExportReadsBackAsTheSameModel() throws {
        let original = try makePretrained()
        let path = directory + "/model.gguf"
        try GGUFExport.write(original, storage: .float32, to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.metadata["general.architecture"]?.string, "llama")
        XCTAssertEqual(file.metadata["tokenizer.ggml.pre"]?.string, "gpt-2")
        XCTAssertNotNil(file.tensor("output.weight"), "an untied head is written")
        let loaded = try PretrainedModel.load(path)
        XCTAssertEqual(loaded.model.config, original.model.config)
        XCTAssertFalse(loaded.model.isQuantized)
        let (source, read) = (try XCTUnwrap(original.tokenizer as? Tokenizer), try XCTUnwrap(loaded.tokenizer as? Tokenizer))
        let ids = source.encode(Self.sample)
        XCTAssertEqual(read.encode(Self.sample), ids, "the tokenizer reads back")
        XCTAssertEqual(read.vocabulary, source.vocabulary)
        XCTAssertEqual(read.merges.map { [$0.left, $0.right, $0.result] }, source.merges.map { [$0.left, $0.right, $0.result] })
        XCTAssertEqual(try read.decode(ids), Self.sample)
        // And on random text: the read-back tokenizer (llama.cpp's rules for `gpt-2`) encodes as ours.
        var generator = SeededGenerator(seed: 2026)
        let pieces = ["Once", " upon", " a", " time", " model", "Hello", ",", ".", "!", " ", "  ", "\n", "1", "23", "é", "日本", "<|endoftext|>", "x", "'s", " world"]
        for _ in 0..<400 {
            let text = (0..<Int.random(in: 1...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            XCTAssertEqual(read.encode(text), source.encode(text), "'\(text)'")
        }
        XCTAssertEqual(loaded.chatTemplate?.source, original.chatTemplate?.source)
        XCTAssertEqual(loaded.eosText, "<|endoftext|>")
        XCTAssertTrue(read.stopTokens.contains(source.specialTokenID("<|endoftext|>")!))
        let expected = try original.model.forward(tokens: ids, batch: 1, length: ids.count)
        XCTAssertEqual(try loaded.model.forward(tokens: ids, batch: 1, length: ids.count), expected, "Float32 weights, bit for bit")
    }

    func testQuantizedDirectoriesRunWithTheirBlocksKept() throws {
        let original = try makePretrained()
        let ids = original.tokenizer!.encodeChat(Self.sample, bos: "", eos: "")
        let exact = try original.model.forward(tokens: ids, batch: 1, length: ids.count)
        for format in QuantizedMatrix.Format.allCases where format.isWritable {
            let output = directory + "/\(format)"
            try original.save(to: output, storage: .quantized(format))
            XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/model.safetensors"))
            let kept = try PretrainedModel.load(output, keepQuantized: true)
            XCTAssertTrue(kept.model.isQuantized)
            XCTAssertEqual(kept.model.quantizedTensors["layers.1.ffn.w2.weight"]?.format, format)
            XCTAssertEqual(kept.model.quantizedTensors["lm_head.weight"]?.format, .q8_0, "the head gets 8 bits")
            XCTAssertEqual(kept.tokenizer!.encodeChat(Self.sample, bos: "", eos: ""), ids)
            XCTAssertNotNil(kept.chatTemplate)
            let dequantized = try PretrainedModel.load(output)
            XCTAssertFalse(dequantized.model.isQuantized)
            let keptLogits = try kept.model.forward(tokens: ids, batch: 1, length: ids.count)
            let denseLogits = try dequantized.model.forward(tokens: ids, batch: 1, length: ids.count)
            XCTAssertLessThan(zip(keptLogits, denseLogits).map { abs($0 - $1) }.max()!, 1e-4, "\(format): blocks kept = dequantized")
            // Against the Float32 model the logits move by the rounding: little for 8 bits, more for 4.
            let moved = zip(denseLogits, exact).map { abs($0 - $1) }.max()!, spread = exact.map(abs).max()!
            XCTAssertGreaterThan(moved, 0, "\(format) rounds something")
            XCTAssertLessThan(moved, spread * (format == .q8_0 ? 0.02 : 0.25), "\(format): logits moved by \(moved) of \(spread)")
            // And it trains from there (dequantized), so a quantized directory is not a dead end.
            XCTAssertNoThrow(try dequantized.model.requireDense(for: "training"))
        }
        // Back to Float32 in the same directory: the GGUF weights make way.
        let output = directory + "/q8_0"
        try original.save(to: output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/" + Checkpoint.quantizedWeightsFile))
        XCTAssertEqual(try PretrainedModel.load(output).model.forward(tokens: ids, batch: 1, length: ids.count), exact)
    }

    func testTiedHeadIsWrittenOnce() throws {
        let original = try makePretrained()
        let model = original.model
        _ = model.tensor("lm_head.weight")!.update(fromContentsOf: model.tensor("token_embeddings.weight")!)
        let path = directory + "/tied.gguf"
        try GGUFExport.write(original, storage: .quantized(.q4_0), to: path)
        let file = try GGUFFile(path: path)
        XCTAssertNil(file.tensor("output.weight"), "llama.cpp ties a missing head to the embedding")
        XCTAssertEqual(file.tensor("token_embd.weight")?.type, .q8_0, "a tied head's 8 bits go to the embedding")
        XCTAssertEqual(file.tensor("blk.0.attn_q.weight")?.type, .q4_0)
        XCTAssertEqual(file.tensor("blk.0.attn_norm.weight")?.type, .f32)
        let kept = try PretrainedModel.load(path, keepQuantized: true)
        XCTAssertTrue(kept.model.quantizedTensors["lm_head.weight"] === kept.model.quantizedTensors["token_embeddings.weight"])
    }

    func testQuantizedModelsRefuseToExportAndFloat32OnesNeedAByteLevelTokenizer() throws {
        let original = try makePretrained()
        try original.save(to: directory + "/q", storage: .quantized(.q8_0))
        let kept = try PretrainedModel.load(directory + "/q", keepQuantized: true)
        XCTAssertThrowsError(try GGUFExport.write(kept, storage: .float32, to: directory + "/never.gguf")) {
            XCTAssertTrue("\($0)".contains("quantized"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/never.gguf"), "nothing half-written")
        let noTokenizer = PretrainedModel(model: original.model)
        try GGUFExport.write(noTokenizer, storage: .float32, to: directory + "/bare.gguf")
        XCTAssertNil(try PretrainedModel.load(directory + "/bare.gguf").tokenizer)
    }

    /// A model file replaced in place while a quantized model decodes from its map (what
    /// `lm-serve` and `lm chat` do) ends the step in an error naming the file, not SIGBUS; a
    /// file replaced by a rename (the old one kept open) goes on as before.
    func testAModelFileThatShrinksUnderADecoderIsAnErrorNamingIt() throws {
        let path = directory + "/model.gguf"
        try GGUFExport.write(try makePretrained(), storage: .quantized(.q8_0), to: path)
        let kept = try PretrainedModel.load(path, keepQuantized: true)
        let decoder = try BatchDecoder(model: kept.model, slots: 1, context: 16)
        let prompt: [Int32] = [1, 2, 3]
        let before = try decoder.prefill(slot: 0, tokens: prompt)
        XCTAssertNoThrow(try decoder.step([(slot: 0, token: 4)]))
        // A rename leaves the mapped file as it was.
        try FileManager.default.moveItem(atPath: path, toPath: directory + "/moved.gguf")
        XCTAssertNoThrow(try decoder.step([(slot: 0, token: 5)]))
        // Truncated in place (as `cp new.gguf model.gguf` starts by doing).
        XCTAssertEqual(truncate(directory + "/moved.gguf", 0), 0)
        XCTAssertThrowsError(try decoder.step([(slot: 0, token: 6)])) {
            XCTAssertTrue("\($0)".contains(path) && "\($0)".contains("shrank"), "\($0)")
        }
        decoder.reset(slot: 0)
        XCTAssertThrowsError(try decoder.prefill(slot: 0, tokens: prompt), "every later step says so too") {
            XCTAssertTrue("\($0)".contains("shrank"), "\($0)")
        }
        XCTAssertEqual(before.count, kept.model.config.vocabSize)
    }
}
