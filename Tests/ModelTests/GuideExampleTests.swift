import Foundation
import Kernels
import Model
import TestSupport
import XCTest

/// The Swift examples of the guide (Sources/Model/Model.docc), compiled and checked here. Each
/// test holds its article's code block verbatim between `// guide:` markers, and
/// ``testEveryArticleExampleIsCompiledHere`` reads the articles and fails unless every Swift block
/// appears in this file letter for letter (imports aside): an article cannot drift from code that
/// compiles and passes.
final class GuideExampleTests: XCTestCase {
    func testRunningARealModelExample() throws {
        _ = try Fixtures.requireSmolLM2()  // a visible skip when models/ has not been fetched
        // guide: RunningARealModel
        let smol = try PretrainedModel.load("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        let chat = try ChatSession(smol)
        let turn = try chat.respond(to: "What is the capital of France?",
                                    options: GenerationOptions(maxTokens: 32, temperature: 0)) { piece in
            print(piece, terminator: "")   // streamed as it is decoded
            return true                    // false stops the answer
        }
        // turn.text == "The capital of France is Paris."
        // end guide
        XCTAssertEqual(turn.text, "The capital of France is Paris.")
    }

    func testInsideARealModelExample() throws {
        _ = try Fixtures.requireSmolLM2()  // a visible skip when models/ has not been fetched
        // guide: InsideARealModel
        let smol = try PretrainedModel.load("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        let tokenizer = smol.tokenizer!
        let clean = tokenizer.encodePrompt("The capital of France is")
        let corrupted = tokenizer.encodePrompt("The capital of Italy is")   // the same length: 5 tokens
        let run = try InspectedForward(smol.model, tokens: clean)           // every intermediate kept

        let lens = try LogitLens(run, top: 3)
        // lens.settledLayer[4] == 30: " Paris" is the top token only after the last block

        let parts = try DirectLogitAttribution(run, token: run.prediction(at: 4))
        // parts.heads[23][4] ≈ 2.8: one head's share of the logit; parts.total == parts.logit

        let patching = try ActivationPatching(smol.model, clean: clean, corrupted: corrupted,
                                              sites: [.head(layer: 23, head: 4)])
        // patching.recovered(patching.outcomes[0]) ≈ 0.97: that head alone brings " Paris" back
        // end guide
        XCTAssertEqual(lens.settledLayer[4], 30)
        XCTAssertEqual(tokenizer.encodeChat(" Paris", bos: "", eos: ""), [run.prediction(at: 4)])
        XCTAssertEqual(parts.heads[23][4], 2.8, accuracy: 0.2)
        XCTAssertEqual(parts.total, parts.logit, accuracy: 1e-3)
        XCTAssertEqual(patching.recovered(patching.outcomes[0]), 0.97, accuracy: 0.05)
    }

    func testLinearExample() {
        // guide: LinearLayer
        let xs = TensorBuffer([1, 2, 3,  4, 5, 6]), ws = TensorBuffer([1, 0, 0,  0, 1, 1]), ys = TensorBuffer(count: 4)
        let x = xs.matrix(rows: 2, columns: 3)         // [rows, in]
        let w = ws.matrix(rows: 2, columns: 3)         // [out, in]
        let y = ys.matrix(rows: 2, columns: 2)         // [rows, out]
        Linear.forward(x: x, weight: w, y: y)
        // y.array == [1, 5,  4, 11]
        // end guide
        XCTAssertEqual(y.array, [1, 5, 4, 11])
    }

    func testRMSNormExample() {
        // guide: RMSNormArticle
        let xs = TensorBuffer([3, 4]), gain = TensorBuffer([1, 1])
        let ys = TensorBuffer(count: 2), rstd = TensorBuffer(count: 1)
        let x = xs.matrix(rows: 1, columns: 2), y = ys.matrix(rows: 1, columns: 2)
        RMSNorm.forward(x: x, weight: gain.storage, y: y, rstd: rstd.storage)
        // rms = √((9 + 16) / 2) ≈ 3.536, so y ≈ [0.849, 1.131]
        // end guide
        XCTAssertEqual(y[0, 0], 0.8485, accuracy: 1e-3)
        XCTAssertEqual(y[0, 1], 1.1314, accuracy: 1e-3)
    }

    func testRoPEExample() {
        // guide: RotaryPositions
        let table = RoPETable(headDim: 2, maxPositions: 8, theta: 10_000)
        let qs = TensorBuffer([1, 0])
        let q = qs.matrix(rows: 1, columns: 2)         // one row, one head of size 2
        let positions = [2]
        positions.withUnsafeBufferPointer { positions in
            RoPE.apply(to: q, RotaryPositions(table: table, positions: positions))
        }
        // θ₀ = 1: rotated by 2 radians, q ≈ [cos 2, sin 2] = [−0.416, 0.909]
        // end guide
        XCTAssertEqual(q[0, 0], -0.4161, accuracy: 1e-3)
        XCTAssertEqual(q[0, 1], 0.9093, accuracy: 1e-3)
    }

    func testScheduleExample() {
        // guide: AdamWAndSchedule
        let schedule = CosineSchedule(maxLearningRate: 1e-3, minLearningRate: 1e-4, warmupSteps: 100, cosineSteps: 1000)
        let warming = schedule.learningRate(at: 50)   // 5e-4: halfway through warm-up
        let ended = schedule.learningRate(at: 1000)   // 1e-4: the end of the cosine
        // end guide
        XCTAssertEqual(warming, 5e-4, accuracy: 1e-12)
        XCTAssertEqual(ended, 1e-4, accuracy: 1e-12)
    }

    func testModelExample() throws {
        // guide: TransformerLanguageModel
        let config = ModelConfig(vocabSize: 1000, contextLength: 128, dModel: 64, numLayers: 2,
                                 numHeads: 4, dFF: 172, ropeTheta: 10_000)
        let model = try TransformerLM(config: config, seed: 0)
        let logits = try model.forward(tokens: [1, 2, 3], batch: 1, length: 3)   // [1, 3, 1000]
        let trace = try model.trace(tokens: [1, 2, 3])                           // every stage, as lm trace prints it
        // end guide
        XCTAssertEqual(logits.count, 3 * 1000)
        XCTAssertEqual(trace.stages.count, 17)
    }

    /// Every ```swift block of every article stands in this file between its `// guide: NAME`
    /// markers, line for line (indentation and import lines aside), and every marked example has
    /// its article.
    func testEveryArticleExampleIsCompiledHere() throws {
        let here = URL(fileURLWithPath: #filePath)
        let guide = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/Model/Model.docc")
        let articles = try FileManager.default.contentsOfDirectory(atPath: guide.path).filter { $0.hasSuffix(".md") }
        XCTAssertFalse(articles.isEmpty, "no articles found in \(guide.path)")
        let source = try String(contentsOf: here, encoding: .utf8)
        let marked = Self.markedExamples(in: source)
        var seen = Set<String>()
        for article in articles.sorted() {
            let text = try String(contentsOf: guide.appendingPathComponent(article), encoding: .utf8)
            let blocks = Self.swiftBlocks(in: text)
            guard !blocks.isEmpty else { continue }
            let name = String(article.dropLast(3))
            XCTAssertEqual(blocks.count, 1, "\(article): one Swift example per article is checked here")
            guard let example = marked[name] else {
                XCTFail("\(article) has a Swift example that no test here compiles (add it between `// guide: \(name)` and `// end guide`)")
                continue
            }
            XCTAssertEqual(example, blocks[0], "\(article)'s example differs from the one compiled in GuideExampleTests")
            seen.insert(name)
        }
        XCTAssertEqual(Set(marked.keys), seen, "examples marked here without an article")
        XCTAssertEqual(seen.count, 7, "the seven examples of the guide")
    }

    /// The lines of each ```swift block, trimmed, without imports and blank lines.
    static func swiftBlocks(in text: String) -> [[String]] {
        var blocks: [[String]] = [], current: [String]? = nil
        for line in text.components(separatedBy: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```swift" { current = []; continue }
            if current != nil, trimmed == "```" { blocks.append(current!); current = nil; continue }
            if current != nil, !trimmed.isEmpty, !trimmed.hasPrefix("import ") { current!.append(trimmed) }
        }
        return blocks
    }

    /// The trimmed lines between `// MARKER: NAME` and `// end MARKER`, by name.
    static func markedExamples(in source: String, marker: String = "guide") -> [String: [String]] {
        var examples: [String: [String]] = [:], name: String? = nil
        for line in source.components(separatedBy: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("// \(marker): ") { name = String(trimmed.dropFirst("// \(marker): ".count)); examples[name!] = []; continue }
            if trimmed == "// end \(marker)" { name = nil; continue }
            if let name, !trimmed.isEmpty { examples[name]!.append(trimmed) }
        }
        return examples
    }
}
