import Foundation
import TensorIO
import TestSupport
import XCTest

/// LoRA at the command line on a model made here (a tokenizer trained here, a ChatML template):
/// `lm train --lora-rank` on conversations, resumed bit for bit, the adapter applied by
/// `--adapter`, folded by `lm merge`, written by `lm export gguf-lora`, and every slip refused
/// with the line, role or setting named and nothing written.
final class LoRACommandTests: TemporaryDirectoryTestCase {
    static let template = """
        {% for message in messages %}<|im_start|>{{ message['role'] }}
        {{ message['content'] }}<|im_end|>
        {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
        {% endif %}
        """

    /// A model directory with a tokenizer (ChatML's markers as special tokens) and the template.
    func makeModel(_ name: String = "model", seed: Int = 0, dModel: Int = 16, dFF: Int = 24) throws -> String {
        let corpus = directory + "/corpus.txt"
        try Data(String(repeating: "the cat sat on the mat. what did the dog eat? the dog ate the hat.\n", count: 30).utf8)
            .write(to: URL(fileURLWithPath: corpus))
        let tokenizer = directory + "/tok"
        if !FileManager.default.fileExists(atPath: tokenizer) {
            let trained = try LMProcess.run(["tokenizer", "train", "--input", corpus, "--vocab-size", "300", "--output", tokenizer, "--quiet",
                                             "--special-token", "<|im_start|>", "--special-token", "<|im_end|>"])
            XCTAssertEqual(trained.status, 0, trained.error)
        }
        let config = directory + "/config-\(name).json"
        try Data(#"{"vocab_size": 300, "context_length": 48, "d_model": \#(dModel), "num_layers": 2, "num_heads": 2, "num_kv_heads": 1, "d_ff": \#(dFF), "rope_theta": 10000}"#.utf8)
            .write(to: URL(fileURLWithPath: config))
        let model = directory + "/" + name
        let made = try LMProcess.run(["init", "--config", config, "--output", model, "--tokenizer", tokenizer, "--seed", "\(seed)"])
        XCTAssertEqual(made.status, 0, made.error)
        try Data(Self.template.utf8).write(to: URL(fileURLWithPath: model + "/chat_template.jinja"))
        return model
    }

    func writeConversations(_ lines: [String]? = nil) throws -> String {
        let path = directory + "/chat.jsonl"
        let rows = lines ?? (0..<16).map { i in
            i % 2 == 0 ? #"{"messages": [{"role": "user", "content": "what did the dog eat?"}, {"role": "assistant", "content": "the dog ate the hat."}]}"#
                : #"{"prompt": "the cat sat on", "completion": "the mat."}"#
        }
        try Data(rows.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func train(_ model: String, data: String, output: String, steps: Int, extra: [String] = []) throws -> (status: Int32, output: String, error: String) {
        try LMProcess.run(["train", "--model", model, "--train", data, "--lora-rank", "2", "--steps", "\(steps)", "--cosine-steps", "6",
                           "--warmup", "1", "--batch-size", "2", "--context", "16", "--validation-fraction", "0.25", "--eval-interval", "3",
                           "--eval-batches", "1", "--checkpoint-interval", "3", "--lr-max", "0.01", "--lr-min", "0.001", "--quiet",
                           "--output", output] + extra)
    }

    func logits(_ arguments: [String], ids: String) throws -> [Float] {
        let out = directory + "/logits-\(UUID().uuidString).npy"
        let run = try LMProcess.run(["logits", "--tokens", ids, "--output", out] + arguments)
        XCTAssertEqual(run.status, 0, run.error)
        return try NPYFile(path: out).floats()
    }

    func testTrainResumeApplyMergeAndExport() throws {
        let model = try makeModel(), data = try writeConversations()
        let whole = directory + "/whole", halves = directory + "/halves"
        let first = try train(model, data: data, output: whole, steps: 6)
        XCTAssertEqual(first.status, 0, first.error)
        XCTAssertTrue(first.error.contains("16 conversations"), first.error)
        for name in ["adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors", "training_state.json", "loss.svg", "data/train.npy", "data/train.mask.npy"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: whole + "/" + name), name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: whole + "/model.safetensors"), "the base is not copied: the run holds the adapter")
        // Three steps, stop, resume to six: the adapter the uninterrupted run wrote, bit for bit.
        XCTAssertEqual(try train(model, data: data, output: halves, steps: 3).status, 0)
        let resumed = try LMProcess.run(["train", "--resume", halves, "--steps", "6", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        let a = try SafeTensorsFile(path: whole + "/adapter_model.safetensors"), b = try SafeTensorsFile(path: halves + "/adapter_model.safetensors")
        for entry in a.entries { XCTAssertEqual(try a.floats(entry.name), try b.floats(entry.name), "resumed \(entry.name)") }

        // The adapter changes the logits; merged, the model alone gives the same.
        let ids = directory + "/ids.npy"
        try NPYWriter.write([Int32]([0, 5, 9, 3, 1, 7, 2, 0, 11]), shape: [9], to: ids)
        let base = try logits(["--model", model], ids: ids), adapted = try logits(["--model", model, "--adapter", whole], ids: ids)
        XCTAssertGreaterThan(zip(base, adapted).map { abs($0 - $1) }.max()!, 1e-3, "the adapter moves the logits")
        let merged = try LMProcess.run(["merge", "--model", model, "--adapter", whole, "--output", directory + "/merged"])
        XCTAssertEqual(merged.status, 0, merged.error)
        let folded = try logits(["--model", directory + "/merged"], ids: ids)
        XCTAssertLessThan(zip(folded, adapted).map { abs($0 - $1) }.max()!, 1e-4, "merged = applied")
        let generated = try LMProcess.run(["generate", "--model", model, "--adapter", whole, "--prompt", "the cat", "--max-tokens", "4", "--temperature", "0"])
        XCTAssertEqual(generated.status, 0, generated.error)
        let exported = try LMProcess.run(["export", "gguf-lora", "--model", model, "--adapter", whole, "--output", directory + "/adapter.gguf"])
        XCTAssertEqual(exported.status, 0, exported.error)
        let file = try GGUFFile(path: directory + "/adapter.gguf")
        XCTAssertEqual(file.metadata["general.type"]?.string, "adapter")
        XCTAssertEqual(file.metadata["adapter.type"]?.string, "lora")
        XCTAssertNotNil(file.tensors.first { $0.name == "blk.0.attn_q.weight.lora_a" })
    }

    /// QLoRA: a GGUF base keeps its blocks, on resume too (the adapter the uninterrupted run wrote).
    func testQLoRAOnAGGUFResumesBitForBit() throws {
        let model = try makeModel("q8", dModel: 32, dFF: 64), data = try writeConversations()
        let gguf = directory + "/base.gguf"
        let exported = try LMProcess.run(["export", "gguf", "--model", model, "--type", "q8_0", "--output", gguf])
        XCTAssertEqual(exported.status, 0, exported.error)
        let whole = directory + "/whole", halves = directory + "/halves"
        XCTAssertEqual(try train(gguf, data: data, output: whole, steps: 6).status, 0)
        XCTAssertEqual(try train(gguf, data: data, output: halves, steps: 3).status, 0)
        let state = try String(contentsOfFile: halves + "/training_state.json", encoding: .utf8)
        XCTAssertTrue(state.contains("\"baseQuantized\" : true"), state)
        let resumed = try LMProcess.run(["train", "--resume", halves, "--steps", "6", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        let a = try SafeTensorsFile(path: whole + "/adapter_model.safetensors"), b = try SafeTensorsFile(path: halves + "/adapter_model.safetensors")
        for entry in a.entries { XCTAssertEqual(try a.floats(entry.name), try b.floats(entry.name), "resumed \(entry.name)") }
    }

    func testSlipsAreRefusedNamingWhatAndWritingNothing() throws {
        let model = try makeModel()
        let cases: [([String], String)] = [
            ([#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "the mat."}]}"#, "not json", "{}"], "line 2: not a JSON object"),
            ([#"{"messages": [{"role": "tool", "content": "hi"}, {"role": "assistant", "content": "x"}]}"#], "line 1: message 1 has role 'tool'"),
            ([#"{"messages": [{"role": "user", "content": "hi"}]}"#], "line 1: no assistant message"),
            ([#"{"prompt": 3, "completion": "x"}"#], "line 1: 'prompt' and 'completion' must be strings"),
            ([#"{"text": "the cat"}"#], "line 1: neither a conversation"),
        ]
        for (lines, expected) in cases {
            let data = try writeConversations(lines), output = directory + "/run"
            let run = try train(model, data: data, output: output, steps: 2)
            XCTAssertNotEqual(run.status, 0, expected)
            XCTAssertTrue(run.error.contains(expected), "expected '\(expected)' in: \(run.error)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "nothing written for: \(expected)")
        }
        let data = try writeConversations()
        for (options, expected) in [(["--lora-rank", "0"], "--lora-rank must be at least 1"), (["--lora-rank", "99"], "larger than"),
                                    (["--lora-rank", "2", "--lora-targets", "q,,v"], "element 2 of 3 is empty"),
                                    (["--lora-rank", "2", "--lora-targets", "q,x"], "'x', is not one of")] {
            let run = try LMProcess.run(["train", "--model", model, "--train", data, "--steps", "1", "--output", directory + "/run2", "--quiet"] + options)
            XCTAssertNotEqual(run.status, 0)
            XCTAssertTrue(run.error.contains(expected), "expected '\(expected)' in: \(run.error)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/run2"))
        }
        // An adapter trained for one base, applied to another of a different width.
        XCTAssertEqual(try train(model, data: data, output: directory + "/run3", steps: 1).status, 0)
        let other = try makeModel("wide", dModel: 32)
        let applied = try LMProcess.run(["generate", "--model", other, "--adapter", directory + "/run3", "--prompt", "the", "--max-tokens", "1"])
        XCTAssertNotEqual(applied.status, 0)
        XCTAssertTrue(applied.error.contains("adapter_model.safetensors"), applied.error)
    }
}
