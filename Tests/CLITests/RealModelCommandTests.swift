import Foundation
import TensorIO
import TestSupport
import XCTest

/// `lm` on real models: SmolLM2-135M-Instruct's GGUF (chat, generate, tokenizer) and the tiny
/// Hugging Face Llama (import keeps tokenizer, stops, template and logits).
final class RealModelCommandTests: TemporaryDirectoryTestCase {
    func testChatOnSmolLM2AnswersParisAndKeepsTheCache() throws {
        let model = try Fixtures.requireSmolLM2()
        let run = try LMProcess.run(["chat", "--model", model, "--temperature", "0", "--max-tokens", "32"],
                                    input: "What is the capital of France?\nAnd of Germany?\n")
        XCTAssertEqual(run.status, 0, run.error)
        let answers = run.output.split(separator: "\n")
        XCTAssertEqual(answers.count, 2, run.output)
        XCTAssertTrue(answers.first?.contains("Paris") == true, run.output)
        XCTAssertTrue(answers.last?.contains("Berlin") == true, run.output)
        // The second turn prefills only its own tokens: the first turn's are cached.
        XCTAssertTrue(run.error.contains("(0 cached)"), run.error)
        XCTAssertNotNil(run.error.range(of: #"\(([1-9][0-9]*) cached\)"#, options: .regularExpression), run.error)
    }

    func testGenerateOnSmolLM2IsTheReferenceGreedyText() throws {
        let model = try Fixtures.requireSmolLM2()
        let prompts = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: try Fixtures.requireSharedData("smollm2/prompts.json")))) as! [[String: Any]]
        let plain = prompts.first { $0["name"] as? String == "plain" }!
        let prompt = plain["text"] as! String, continuation = plain["greedy24_text"] as! String
        let run = try LMProcess.run(["generate", "--model", model, "--prompt", prompt, "--temperature", "0", "--max-tokens", "24"])
        XCTAssertEqual(run.status, 0, run.error)
        XCTAssertEqual(run.output, prompt + continuation + "\n")
        XCTAssertTrue(run.error.contains("load:"), run.error)
    }

    func testTokenizerEncodeOnTheGGUFGivesLlamaCppIds() throws {
        let model = try Fixtures.requireSmolLM2()
        let text = "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
        try text.write(toFile: directory + "/in.txt", atomically: true, encoding: .utf8)
        let run = try LMProcess.run(["tokenizer", "encode", "--tokenizer", model, "--input", directory + "/in.txt", "--output", directory + "/ids.npy", "--quiet"])
        XCTAssertEqual(run.status, 0, run.error)
        XCTAssertEqual(try NPYFile(path: directory + "/ids.npy").integers(), [1, 4093, 198, 26843, 17, 2, 198, 1, 520, 9531, 198])
    }

    func testHuggingFaceImportKeepsTokenizerStopsTemplateAndLogits() throws {
        let fixture = try Fixtures.requireSharedData("hf-llama-tiny")
        let output = directory + "/tiny"
        let imported = try LMProcess.run(["import", "hf", "--model", fixture, "--output", output])
        XCTAssertEqual(imported.status, 0, imported.error)
        XCTAssertTrue(imported.output.contains("49152-token tokenizer, chat template"), imported.output)
        let expected = try NPYFile(path: fixture + "/expected_logits.npy").floats()
        var results: [[Float]] = []
        for source in [fixture, output] {
            let logits = directory + "/logits.npy"
            let run = try LMProcess.run(["logits", "--model", source, "--tokens", fixture + "/expected_ids.npy", "--output", logits])
            XCTAssertEqual(run.status, 0, run.error)
            results.append(try NPYFile(path: logits).floats())
            XCTAssertLessThan(zip(results.last!, expected).map { abs($0 - $1) }.max() ?? 1, 3e-4, source)
        }
        XCTAssertEqual(results[0], results[1], "the imported directory computes what the Hugging Face one does")
        let text = "In 2024, 3.14 x 12 = 37.68!<|im_end|>"
        try text.write(toFile: directory + "/in.txt", atomically: true, encoding: .utf8)
        var encodings: [[Int]] = []
        for source in [fixture, output] {
            let run = try LMProcess.run(["tokenizer", "encode", "--tokenizer", source, "--input", directory + "/in.txt", "--output", directory + "/ids.npy", "--quiet"])
            XCTAssertEqual(run.status, 0, run.error)
            encodings.append(try NPYFile(path: directory + "/ids.npy").integers())
        }
        XCTAssertEqual(encodings[0], [788, 216, 34, 32, 34, 36, 28, 216, 35, 30, 33, 36, 1792, 216, 33, 34, 446, 216, 35, 39, 30, 38, 40, 17, 2])
        XCTAssertEqual(encodings[1], encodings[0], "the imported tokenizer keeps SmolLM2's digit rule")
        XCTAssertTrue(FileManager.default.fileExists(atPath: output + "/chat_template.jinja"))
        let stops = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/generation_config.json"))) as! [String: Any]
        XCTAssertEqual(stops["eos_token_id"] as? [Int], [2])

        // Fine-tuning the imported model keeps what chat needs; the run then chats.
        let ids = (0..<2_000).map { Int32(($0 * 7919) % 49_152) }
        try NPYWriter.write(ids, shape: [ids.count], to: directory + "/train.npy")
        let run = directory + "/run"
        let trained = try LMProcess.run(["train", "--model", output, "--train", directory + "/train.npy", "--output", run, "--steps", "2",
                                         "--batch-size", "2", "--context", "32", "--eval-interval", "2", "--eval-batches", "1"])
        XCTAssertEqual(trained.status, 0, trained.error)
        for name in ["chat_template.jinja", "generation_config.json", "tokenizer_config.json", "tokenizer.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/" + name), "the run keeps \(name)")
        }
        let chat = try LMProcess.run(["chat", "--model", run, "--max-tokens", "4", "--temperature", "0"], input: "Hi\n")
        XCTAssertEqual(chat.status, 0, chat.error)
        XCTAssertTrue(chat.error.contains("decode"), chat.error)
    }

    /// Bad input to the real-model commands: each a clear error naming what is wrong.
    func testBadModelFilesAndTemplatesAreNamed() throws {
        let fixture = try Fixtures.requireSharedData("hf-llama-tiny")
        // A template that does not parse, and one that is missing.
        try "{% for m in messages %}{{ m.content }}".write(toFile: directory + "/bad.jinja", atomically: true, encoding: .utf8)
        let badTemplate = try LMProcess.run(["chat", "--model", fixture, "--chat-template", directory + "/bad.jinja"], input: "Hi\n")
        XCTAssertNotEqual(badTemplate.status, 0)
        XCTAssertTrue(badTemplate.error.contains("bad.jinja") && badTemplate.error.contains("endfor"), badTemplate.error)
        let missing = try LMProcess.run(["chat", "--model", fixture, "--chat-template", directory + "/none.jinja"], input: "Hi\n")
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.error.contains("none.jinja"), missing.error)
        // A truncated shard names its file.
        let broken = directory + "/broken"
        try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: fixture) {
            try FileManager.default.copyItem(atPath: fixture + "/" + name, toPath: broken + "/" + name)
        }
        let shard = broken + "/model-00002-of-00003.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: shard))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: shard))
        let truncated = try LMProcess.run(["generate", "--model", broken, "--prompt", "Hi"])
        XCTAssertNotEqual(truncated.status, 0)
        XCTAssertTrue(truncated.error.contains("model-00002-of-00003.safetensors"), truncated.error)
        // A model directory with no chat template: the error says how to give one.
        try FileManager.default.removeItem(atPath: broken + "/chat_template.jinja")
        try data.write(to: URL(fileURLWithPath: shard))
        let noTemplate = try LMProcess.run(["chat", "--model", broken], input: "Hi\n")
        XCTAssertNotEqual(noTemplate.status, 0)
        XCTAssertTrue(noTemplate.error.contains("--chat-template"), noTemplate.error)
    }
}
