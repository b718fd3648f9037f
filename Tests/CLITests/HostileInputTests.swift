import Foundation
import TensorIO
import TestSupport
import XCTest

/// Input that is careless or hostile, at the command line: every size bounded with the size in
/// the message, nothing written before it is validated, nothing replaced without being asked.
final class HostileInputTests: TemporaryDirectoryTestCase {
    func lm(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) { try LMProcess.run(arguments) }

    func config(vocab: Int = 40, context: Int = 16) throws -> String {
        let path = directory + "/config-\(vocab).json"
        let text = #"{"vocab_size": \#(vocab), "context_length": \#(context), "d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 24, "rope_theta": 10000}"#
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func tokens(_ count: Int, vocab: Int = 40) throws -> String {
        let path = directory + "/ids-\(count).npy"
        try NPYWriter.write((0..<count).map { Int32($0 % vocab) }, shape: [count], to: path)
        return path
    }

    /// Sizes that overflow or cannot fit are refused up front, naming them; no run is created.
    func testTrainingSizesAreBoundedBeforeAnythingIsWritten() throws {
        let (config, ids) = (try config(), try tokens(2000))
        let cases: [([String], String)] = [
            (["--context", "8", "--batch-size", "10000000", "--eval-batches", "1"], "of memory; this machine has"),
            (["--context", "8", "--batch-size", "9223372036854775807"], "tokens per step is more than"),
            (["--context", "8", "--eval-batches", "9223372036854775807"], "validation windows is more than"),
            (["--context", "8", "--steps", "0"], "--steps must be at least 1"),
            (["--context", "17"], "--context 17 must be in 1...16"),
            (["--context", "8", "--threads", "3000000000"], "--threads must be in 1...1024"),
        ]
        for (extra, message) in cases {
            let run = directory + "/run"
            let result = try lm(["train", "--config", config, "--train", ids, "--output", run, "--quiet"] + extra)
            XCTAssertNotEqual(result.status, 0, "\(extra)")
            XCTAssertTrue(result.error.contains(message), "\(extra): \(result.error)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: run), "\(extra): nothing written")
        }
    }

    /// A model directory is not overwritten by a run without --force, and keeps its weights; the
    /// --model directory itself never is (it is the run's input).
    func testTrainingIntoAModelDirectoryNeedsForce() throws {
        let model = directory + "/model", other = directory + "/other"
        XCTAssertEqual(try lm(["init", "--config", try config(), "--output", model]).status, 0)
        XCTAssertEqual(try lm(["init", "--config", try config(), "--output", other, "--seed", "3"]).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: other + "/model.safetensors"))
        let refused = try lm(["train", "--model", model, "--train", try tokens(2000), "--output", other, "--steps", "2",
                              "--batch-size", "2", "--context", "8", "--quiet"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.error.contains("holds a model") && refused.error.contains("--force"), refused.error)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: other + "/model.safetensors")), before)
        let own = try Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors"))
        let over = try lm(["train", "--model", model, "--train", try tokens(2000), "--output", model, "--steps", "2",
                           "--batch-size", "2", "--context", "8", "--quiet", "--force"])
        XCTAssertNotEqual(over.status, 0)
        XCTAssertTrue(over.error.contains("--output \(model) is the input --model"), over.error)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors")), own)
    }

    /// Logits that would not fit in memory are refused before they are allocated.
    func testLogitsThatCannotFitAreRefused() throws {
        let model = directory + "/model"
        XCTAssertEqual(try lm(["init", "--config", try config(vocab: 4000, context: 32), "--output", model]).status, 0)
        let ids = directory + "/many.npy"
        try NPYWriter.write([Int32](repeating: 1, count: 500_000 * 32), shape: [500_000, 32], to: ids)
        let result = try lm(["logits", "--model", model, "--tokens", ids, "--output", directory + "/logits.npy"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.error.contains("would need") && result.error.contains("of memory"), result.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/logits.npy"))
    }

    /// A corpus too small for the demo's context is refused, and its folder does not stay behind.
    func testTheDemoOnATinyCorpusLeavesNothing() throws {
        for (name, text) in [("empty", ""), ("special", "<|endoftext|>"), ("pair", String(repeating: "ab", count: 60))] {
            let corpus = directory + "/\(name).txt", output = directory + "/demo-\(name)"
            try Data(text.utf8).write(to: URL(fileURLWithPath: corpus))
            let result = try lm(["demo", "--input", corpus, "--output", output, "--minutes", "0.1", "--quiet"])
            XCTAssertNotEqual(result.status, 0, name)
            XCTAssertTrue(result.error.contains("tokens") || result.error.contains("empty"), "\(name): \(result.error)")
            XCTAssertFalse(result.error.contains("Fatal error"), "\(name): \(result.error)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "\(name): the demo's folder is removed")
        }
    }

    /// `/dev/zero` is one endless pre-token: refused at the documented limit, with no output file.
    func testAnEndlessPreTokenIsRefused() throws {
        let corpus = directory + "/text.txt"
        try Data(String(repeating: "some text to learn a few merges from. ", count: 50).utf8).write(to: URL(fileURLWithPath: corpus))
        XCTAssertEqual(try lm(["tokenizer", "train", "--input", corpus, "--vocab-size", "270", "--output", directory + "/tok", "--quiet"]).status, 0)
        let result = try lm(["tokenizer", "encode", "--tokenizer", directory + "/tok", "--input", "/dev/zero", "--output", directory + "/zero.npy"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.error.contains("16 MiB from offset 0 without a place where the text can be cut"), result.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/zero.npy"))
    }
}
