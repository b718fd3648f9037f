import Foundation
import Kernels
import Model
import TensorIO
import TestSupport
import Tokenizer
import XCTest

/// The README's "As a library" examples, held here letter for letter between `// readme: NAME`
/// and `// end readme` (after a few lines that make the files they name) and run;
/// ``testEveryReadmeExampleIsCompiledHere`` fails when the README's Swift blocks and these differ.
final class LibraryExampleTests: TemporaryDirectoryTestCase {
    var folder: String { directory }

    /// A small random model with a tokenizer trained on a few sentences, saved as a model directory.
    func makeModelDirectory() throws -> String {
        let text = String(repeating: "Once upon a time there was a model. Hello, world! ", count: 40)
        let tokenizer = try Array(text.utf8).withUnsafeBufferPointer {
            try BPETrainer.train(bytes: $0, options: BPETrainingOptions(vocabSize: 300))
        }
        let config = ModelConfig(vocabSize: tokenizer.vocabularySize, contextLength: 32, dModel: 32, numLayers: 2,
                                 numHeads: 4, dFF: 64, ropeTheta: 10_000)
        let modelDirectory = folder + "/model"
        try Checkpoint.save(try TransformerLM(config: config, seed: 3), directory: modelDirectory)
        try TokenizerDirectory.save(tokenizer, to: modelDirectory)
        return modelDirectory
    }

    func testInferenceExample() throws {
        let directory = try makeModelDirectory()
        // readme: inference
        let model = try Checkpoint.load(directory: directory)
        let tokenizer = try TokenizerDirectory.load(directory)
        let ids = tokenizer.encode("Hello, world")
        let logits = try model.forward(tokens: ids, batch: 1, length: ids.count)   // [1, T, vocab]
        let report = try Generator(model: model).generate(
            prompt: tokenizer.encode("Once upon a time"),
            options: GenerationOptions(maxTokens: 5, temperature: 0.8, topP: 0.95, seed: 1)) { id in
                print(id, terminator: " ")
                return true
            }
        // end readme
        XCTAssertEqual(logits.count, ids.count * model.config.vocabSize)
        XCTAssertEqual(report.generatedTokens, 5)
    }

    func testTrainingExample() throws {
        let model = try TransformerLM(config: ModelConfig(vocabSize: 50, contextLength: 16, dModel: 32, numLayers: 2,
                                                          numHeads: 4, dFF: 64, ropeTheta: 10_000), seed: 4)
        var generator = SeededGenerator(seed: 5)
        // A corpus with structure to learn: a short repeating pattern with a little noise.
        let ids = (0..<4000).map { index in index % 7 == 0 ? Int32.random(in: 0..<50, using: &generator) : Int32(index % 11) }
        let idsPath = folder + "/ids.npy"
        try NPYWriter.write(ids, shape: [ids.count], to: idsPath)
        // readme: training
        let data = try TokenDataset(path: idsPath, vocabSize: model.config.vocabSize)
        let step = try TrainStep(model: model, optimizer: try AdamW(layout: model.layout, options: AdamWOptions(weightDecay: 0.1)),
                                 batch: 4, length: 16, maxGradientNorm: 1)
        let schedule = CosineSchedule(maxLearningRate: 1e-3, minLearningRate: 1e-4, warmupSteps: 2, cosineSteps: 20)
        var sampler = BatchSampler(batch: 4, length: 16, state: 0)
        var losses: [Double] = []
        for index in 0..<20 {
            let outcome = try step.run(sampler: &sampler, data: data, learningRate: schedule.learningRate(at: index))
            losses.append(outcome.loss)   // also outcome.gradientNorm, and the seconds spent with the other ranks
        }
        // end readme
        XCTAssertEqual(losses.count, 20)
        XCTAssertLessThan(losses.suffix(5).reduce(0, +) / 5, losses.prefix(5).reduce(0, +) / 5, "20 steps lower the loss")
    }

    func testCompositionExample() throws {
        let model = try TransformerLM(config: ModelConfig(vocabSize: 50, contextLength: 16, dModel: 32, numLayers: 1,
                                                          numHeads: 4, dFF: 64, ropeTheta: 10_000), seed: 6)
        // readme: composition
        let layout = try ParameterLayout(tensors: [("proj.weight", [16, 32], .matrix), ("norm.weight", [32], .gain)])
        let parameters = TensorBuffer(count: layout.totalCount), gradients = TensorBuffer(count: layout.totalCount)
        let optimizer = try AdamW(layout: layout, options: AdamWOptions(weightDecay: 0.1))
        optimizer.step(parameters: parameters, gradients: gradients, learningRate: 1e-3)
        try Checkpoint.write(parameters, layout: layout, metadata: ["step": "1"], to: folder + "/mine.safetensors")
        try Checkpoint.write(optimizer, to: folder + "/mine-optimizer.safetensors")
        let restored = try Checkpoint.readOptimizer(path: folder + "/mine-optimizer.safetensors", layout: layout, options: optimizer.options)
        print(restored.step)   // 1

        let (t, c) = (10, 32)
        let dims = AttentionDims(batch: 1, queryLength: t, keyLength: t, heads: 4, kvHeads: 4, headDim: 8)
        let x = TensorBuffer(count: t * c), qkvWeight = TensorBuffer(count: 3 * c * c), outputWeight = TensorBuffer(count: c * c)
        let y = TensorBuffer(count: t * c), qkv = TensorBuffer(count: t * 3 * c), context = TensorBuffer(count: t * c)
        let probabilities = TensorBuffer(count: dims.heads * t * t)
        CausalSelfAttention.forward(
            x: x.matrix(rows: t, columns: c), qkvWeight: qkvWeight.matrix(rows: 3 * c, columns: c),
            outputWeight: outputWeight.matrix(rows: c, columns: c), rope: nil, y: y.matrix(rows: t, columns: c),
            qkv: qkv.matrix(rows: t, columns: 3 * c), saved: .probabilities(probabilities.matrix(rows: dims.heads * t, columns: t)),
            context: context.matrix(rows: t, columns: c), dims: dims)

        do {
            _ = try model.forward(tokens: [Int32(model.config.vocabSize)], batch: 1, length: 1)
        } catch let error as ModelError {
            print(error.message)   // tokens: id … at [0, 0] is outside 0..<vocab
        }
        // end readme
        XCTAssertEqual(restored.step, 1)
        XCTAssertEqual(restored.secondMoment.array, optimizer.secondMoment.array)
        // Uniform attention over zero inputs: the causal rows of each head sum to one.
        let firstHead = probabilities.matrix(rows: dims.heads * t, columns: t).rows(0..<t)
        for row in 0..<t { XCTAssertEqual((0..<t).reduce(Float(0)) { $0 + firstHead[row, $1] }, 1, accuracy: 1e-5) }
        XCTAssertEqual(firstHead[0, 1], 0, "causal: the first query sees only itself")
        XCTAssertThrowsError(try model.forward(tokens: [Int32(model.config.vocabSize)], batch: 1, length: 1)) {
            XCTAssertTrue(($0 as? ModelError)?.message.contains("id 50 at [0, 0] is outside 0..<50") == true, "\($0)")
        }
    }

    /// Every ```swift block of the README's library section but the Package.swift one stands here
    /// between its markers, line for line (indentation, blank lines and imports aside).
    func testEveryReadmeExampleIsCompiledHere() throws {
        let here = URL(fileURLWithPath: #filePath)
        let readme = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let blocks = GuideExampleTests.swiftBlocks(in: text).filter { $0.first != "// Package.swift" }
        let marked = GuideExampleTests.markedExamples(in: try String(contentsOf: here, encoding: .utf8), marker: "readme")
        XCTAssertEqual(blocks.count, 3, "the README's three library examples")
        for (name, block) in zip(["inference", "training", "composition"], blocks) {
            XCTAssertEqual(marked[name], block, "the README's \(name) example differs from the one compiled in LibraryExampleTests")
        }
    }
}
