import Foundation
import TensorIO
import TestSupport
import XCTest

/// `lm` run as a process, for what only shows at the command line: exit codes, messages,
/// environment variables, files left behind.
final class CLITests: TemporaryDirectoryTestCase {
    /// The `lm` SwiftPM built beside this test bundle.
    func executable() throws -> String { try builtExecutable("lm") }

    /// Runs `lm` with `arguments`: exit status, stdout and stderr.
    func lm(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
        try LMProcess.run(arguments, environment: environment)
    }

    func writeConfig() throws -> String {
        let path = directory + "/config.json"
        let config = #"{"vocab_size": 40, "context_length": 16, "d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 24, "rope_theta": 10000}"#
        try Data(config.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testInitRefusesToReplaceAModelWithoutForce() throws {
        let config = try writeConfig(), model = directory + "/model"
        XCTAssertEqual(try lm(["init", "--config", config, "--output", model]).status, 0)
        let weights = try Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors"))
        let again = try lm(["init", "--config", config, "--output", model, "--seed", "5"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.error.contains("pass --force"), again.error)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors")), weights, "the weights are untouched")
        XCTAssertEqual(try lm(["init", "--config", config, "--output", model, "--seed", "5", "--force"]).status, 0)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors")), weights)
    }

    /// `lm quantize` and `lm export gguf`: what they write runs in `lm logits` near the Float32
    /// model's logits; bad options and existing outputs are refused with nothing written.
    func testQuantizeAndExportWriteModelsTheOtherCommandsRun() throws {
        let config = directory + "/config.json", model = directory + "/model", ids = directory + "/ids.npy"
        let text = #"{"vocab_size": 40, "context_length": 16, "d_model": 32, "num_layers": 1, "num_heads": 2, "d_ff": 64, "rope_theta": 10000}"#
        try Data(text.utf8).write(to: URL(fileURLWithPath: config))
        XCTAssertEqual(try lm(["init", "--config", config, "--output", model]).status, 0)
        try NPYWriter.write([Int32]([1, 5, 9, 3, 3, 7, 2, 0, 39, 11]), shape: [10], to: ids)
        func logits(_ source: String) throws -> [Float] {
            let run = try lm(["logits", "--model", source, "--tokens", ids, "--output", directory + "/logits.npy"])
            XCTAssertEqual(run.status, 0, run.error)
            return try NPYFile(path: directory + "/logits.npy").floats()
        }
        let exact = try logits(model)
        let quantized = try lm(["quantize", "--model", model, "--type", "q8_0", "--output", directory + "/q8"])
        XCTAssertEqual(quantized.status, 0, quantized.error)
        XCTAssertTrue(quantized.output.contains("Q8_0"), quantized.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/q8/model.gguf"))
        let exported = try lm(["export", "gguf", "--model", model, "--output", directory + "/model.gguf", "--type", "q4_1"])
        XCTAssertEqual(exported.status, 0, exported.error)
        // The logits move by the rounding, within a fraction of their spread (8 bits: little).
        let spread = exact.map(abs).max()!
        for (source, fraction) in [(directory + "/q8", Float(0.02)), (directory + "/model.gguf", 0.25)] {
            let moved = zip(try logits(source), exact).map { abs($0 - $1) }.max()!
            XCTAssertGreaterThan(moved, 0, source)
            XCTAssertLessThan(moved, spread * fraction, "\(source): moved \(moved) of \(spread)")
        }
        let again = try lm(["quantize", "--model", model, "--type", "q4_0", "--output", directory + "/q8"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.error.contains("--force"), again.error)
        let badType = try lm(["quantize", "--model", model, "--type", "q3_k", "--output", directory + "/never"])
        XCTAssertNotEqual(badType.status, 0)
        XCTAssertTrue(badType.error.contains("q3_k"), badType.error)
        let notGGUF = try lm(["export", "gguf", "--model", model, "--output", directory + "/model.bin"])
        XCTAssertNotEqual(notGGUF.status, 0)
        XCTAssertTrue(notGGUF.error.contains(".gguf"), notGGUF.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/never"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/model.bin"))
    }

    #if !MPI
    /// Under mpirun, a build without MPI would have every rank train alone into one directory.
    func testTrainingUnderAnMPILauncherWithoutMPIIsRefused() throws {
        let result = try lm(["train", "--config", try writeConfig(), "--train", directory + "/ids.npy", "--output", directory + "/run"],
                            environment: ["OMPI_COMM_WORLD_SIZE": "2"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.error.contains("this build has no MPI"), result.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/run"), "nothing written")
    }
    #endif

    func testBadThreadCountsAreRefusedWherePassed() throws {
        let config = try writeConfig()
        for value in ["0", "-3", "abc", "3000000000", "99999999999999999999"] {
            let run = try lm(["logits", "--model", directory, "--tokens", config, "--output", directory + "/x.npy"], environment: ["LM_THREADS": value])
            XCTAssertNotEqual(run.status, 0)
            XCTAssertTrue(run.error.contains("LM_THREADS must be an integer in 1...1024, got '\(value)'"), run.error)
        }
        for value in ["0", "3000000000"] {
            let run = try lm(["logits", "--model", directory, "--tokens", config, "--output", directory + "/x.npy", "--threads", value])
            XCTAssertNotEqual(run.status, 0)
            XCTAssertTrue(run.error.contains("--threads must be in 1...1024, got \(value)"), run.error)
        }
    }

    func testFilesThatAreNotWhatTheyShouldBeAreNamed() throws {
        let config = try writeConfig(), model = directory + "/model"
        XCTAssertEqual(try lm(["init", "--config", config, "--output", model]).status, 0)
        // A directory given as a file.
        let asFile = try lm(["train", "--config", directory, "--train", config, "--output", directory + "/run"])
        XCTAssertTrue(asFile.error.contains("\(directory): is a directory"), asFile.error)
        // Booleans are not token ids.
        try NPYWriter.write([Float](repeating: 1, count: 3), shape: [3], to: directory + "/floats.npy")
        let bools = directory + "/bools.npy"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 118, 0])
        data.append(Data(("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }" + String(repeating: " ", count: 60)).utf8.prefix(117)))
        data.append(0x0A)
        data.append(Data([1, 0, 1]))
        try data.write(to: URL(fileURLWithPath: bools))
        try Data("a small text to train a tokenizer on, a small text.\n".utf8).write(to: URL(fileURLWithPath: directory + "/text.txt"))
        XCTAssertEqual(try lm(["tokenizer", "train", "--input", directory + "/text.txt", "--vocab-size", "260", "--output", directory + "/tok", "--quiet"]).status, 0)
        let decode = try lm(["tokenizer", "decode", "--tokenizer", directory + "/tok", "--input", bools])
        XCTAssertNotEqual(decode.status, 0)
        XCTAssertTrue(decode.error.contains("token ids must be int32, int64, uint16 or int16, found BOOL"), decode.error)
        let loss = try lm(["loss", "--model", model, "--tokens", directory + "/floats.npy"])
        XCTAssertTrue(loss.error.contains("token ids must be int32, int64, uint16 or int16, found F32"), loss.error)
    }

    func testLossPrintsTheMeanCrossEntropyAndWritesEveryGradient() throws {
        let config = try writeConfig(), model = directory + "/model"
        XCTAssertEqual(try lm(["init", "--config", config, "--output", model]).status, 0)
        try NPYWriter.write([Int32]([1, 5, 9, 3, 3, 7, 2, 0, 39, 11]), shape: [2, 5], to: directory + "/ids.npy")
        let run = try lm(["loss", "--model", model, "--tokens", directory + "/ids.npy", "--grads", directory + "/grads.safetensors"])
        XCTAssertEqual(run.status, 0, run.error)
        let loss = Double(run.output.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "loss ", with: ""))
        XCTAssertNotNil(loss)
        XCTAssertEqual(loss ?? 0, log(40.0), accuracy: 0.5, "a random model's loss is near ln V")
        let grads = try SafeTensorsFile(path: directory + "/grads.safetensors")
        XCTAssertEqual(grads.entries.count, 1 + 9 + 2, "every parameter tensor")
        XCTAssertTrue(try grads.floats("lm_head.weight").contains { $0 != 0 })
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [])
    }

    /// A llama2.c legacy checkpoint with random weights (dim 16, 2 layers, 4 heads over 2 KV
    /// heads, hidden 24, shared classifier) and a tokenizer.bin of `pieces` pieces.
    func writeLlama2cFiles(vocab: Int, pieces: Int) throws -> (model: String, tokenizer: String) {
        let (dim, hidden, layers, heads, kvHeads, context) = (16, 24, 2, 4, 2, 32)
        var data = Data()
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        [dim, hidden, layers, heads, kvHeads, vocab, context].forEach { append(Int32($0)) }
        let kv = dim / heads * kvHeads
        let floats = vocab * dim + layers * (dim + dim * dim + 2 * kv * dim + dim * dim + dim + 3 * dim * hidden) + dim + context * (dim / heads)
        var state: UInt32 = 1
        for _ in 0..<floats {
            state = state &* 1_664_525 &+ 1_013_904_223
            append((Float(state >> 8) / Float(1 << 24) - 0.5).bitPattern)
        }
        let model = directory + "/model.bin"
        try data.write(to: URL(fileURLWithPath: model))
        var text = Data()
        var list = ["<unk>", "<s>", "</s>"].map { Array($0.utf8) } + (0..<256).map { Array(String(format: "<0x%02X>", $0).utf8) }
        let words = [" ", "a", "b", "c", " a", " b", "ab", "ba", " ab", "abc"].map { Array($0.utf8) }
        var k = 0
        while list.count < pieces {
            list.append(k < words.count ? words[k] : Array("w\(k)".utf8))
            k += 1
        }
        func appendText<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { text.append(contentsOf: $0) } }
        appendText(Int32(list.map(\.count).max()!))
        for (i, piece) in list.enumerated() {
            appendText(Float(-i).bitPattern)
            appendText(Int32(piece.count))
            text.append(contentsOf: piece)
        }
        let tokenizer = directory + "/tokenizer.bin"
        try text.write(to: URL(fileURLWithPath: tokenizer))
        return (model, tokenizer)
    }

    /// `lm import llama2c` writes a model directory that `lm generate` runs with its
    /// tokenizer.bin (prefill and decode speeds reported); a tokenizer of another size is
    /// refused before anything is written.
    func testImportedLlama2cModelGenerates() throws {
        let files = try writeLlama2cFiles(vocab: 300, pieces: 300), output = directory + "/imported"
        let imported = try lm(["import", "llama2c", "--checkpoint", files.model, "--tokenizer", files.tokenizer, "--output", output])
        XCTAssertEqual(imported.status, 0, imported.error)
        XCTAssertTrue(imported.output.contains("4 heads over 2 KV heads"), imported.output)
        for name in ["config.json", "model.safetensors", "tokenizer.bin"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: output + "/" + name), name)
        }
        let generated = try lm(["generate", "--model", output, "--prompt", "ab a", "--max-tokens", "8", "--temperature", "0"])
        XCTAssertEqual(generated.status, 0, generated.error)
        XCTAssertTrue(generated.output.hasPrefix("ab a"), generated.output)
        XCTAssertTrue(generated.error.contains("prefill: ") && generated.error.contains("decode: "), generated.error)
        // The server's sampling options: top-k 1 is greedy at any temperature; a bias outside the
        // vocabulary or a malformed one is refused before anything is printed.
        let topK = try lm(["generate", "--model", output, "--prompt", "ab a", "--max-tokens", "8", "--temperature", "1.3", "--top-k", "1",
                           "--repetition-penalty", "1", "--min-p", "0.1"])
        XCTAssertEqual(topK.output, generated.output, topK.error)
        for bias in ["300:1", "1:2,,3:4", "7:x"] {
            let refused = try lm(["generate", "--model", output, "--prompt", "ab a", "--logit-bias", bias])
            XCTAssertNotEqual(refused.status, 0)
            XCTAssertTrue(refused.error.contains("--logit-bias"), refused.error)
            XCTAssertEqual(refused.output, "", "nothing printed")
        }
        // The tokenizer commands read its tokenizer.bin: encode (BOS first, as run.c) and decode back.
        let text = directory + "/llama-text.txt"
        try Data("ab a ab".utf8).write(to: URL(fileURLWithPath: text))
        let encoded = try lm(["tokenizer", "encode", "--tokenizer", output, "--input", text, "--output", directory + "/llama-text.npy", "--quiet"])
        XCTAssertEqual(encoded.status, 0, encoded.error)
        let ids = try NPYFile(path: directory + "/llama-text.npy").integers()
        XCTAssertEqual(ids.first, 1, "BOS first")
        let decoded = try lm(["tokenizer", "decode", "--tokenizer", output, "--input", directory + "/llama-text.npy"])
        XCTAssertEqual(decoded.status, 0, decoded.error)
        XCTAssertEqual(decoded.output, "ab a ab")
        // Fine-tuning it keeps its tokenizer.bin in the run, which then generates too.
        let trainIDs = directory + "/llama-ids.npy"
        try NPYWriter.write((0..<400).map { Int32($0 % 300) }, shape: [400], to: trainIDs)
        let run = directory + "/tuned"
        let tuned = try lm(["train", "--model", output, "--train", trainIDs, "--output", run, "--steps", "2", "--batch-size", "2",
                            "--context", "8", "--eval-interval", "2", "--eval-batches", "1", "--quiet"])
        XCTAssertEqual(tuned.status, 0, tuned.error)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/tokenizer.bin"), "the llama2.c tokenizer went with the model")
        XCTAssertEqual(try lm(["generate", "--model", run, "--prompt", "ab a", "--max-tokens", "4", "--temperature", "0"]).status, 0)

        let other = try writeLlama2cFiles(vocab: 300, pieces: 301), refused = directory + "/refused"
        let mismatch = try lm(["import", "llama2c", "--checkpoint", other.model, "--tokenizer", other.tokenizer, "--output", refused])
        XCTAssertNotEqual(mismatch.status, 0)
        XCTAssertTrue(mismatch.error.contains("301 pieces") && mismatch.error.contains("vocab_size 300"), mismatch.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: refused), "nothing written after a refusal")
    }

    /// A tokenizer.bin of 300 pieces all `x` (no byte pieces, no `<s>`/`</s>`) is not a tokenizer:
    /// `lm import llama2c` refuses it naming what is missing, and writes nothing.
    func testImportRefusesATokenizerWithoutThePiecesItsEncoderNeeds() throws {
        let files = try writeLlama2cFiles(vocab: 300, pieces: 300), output = directory + "/imported"
        var text = Data()
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { text.append(contentsOf: $0) } }
        append(Int32(1))
        for _ in 0..<300 {
            append(Float(0).bitPattern)
            append(Int32(1))
            text.append(UInt8(ascii: "x"))
        }
        try text.write(to: URL(fileURLWithPath: files.tokenizer))
        let refused = try lm(["import", "llama2c", "--checkpoint", files.model, "--tokenizer", files.tokenizer, "--output", output])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.error.contains(files.tokenizer) && refused.error.contains("piece 1 is 'x', not <s>"), refused.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "nothing written after a refusal")
    }

    /// A model with a tokenizer trained here: `lm trace` prints the real shapes and a prediction,
    /// `lm attention` writes an SVG with one cell per pair, `lm tokenizer show` marks every token.
    func testInspectionTools() throws {
        let corpus = directory + "/corpus.txt"
        try Data(String(repeating: "the cat sat on the mat. the dog ate the hat.\n", count: 40).utf8).write(to: URL(fileURLWithPath: corpus))
        let tokenizer = directory + "/tok"
        let trained = try lm(["tokenizer", "train", "--input", corpus, "--vocab-size", "280", "--output", tokenizer, "--quiet"])
        XCTAssertEqual(trained.status, 0, trained.error)
        let configPath = directory + "/config-inspect.json"
        let config = #"{"vocab_size": 280, "context_length": 32, "d_model": 16, "num_layers": 2, "num_heads": 2, "d_ff": 24, "rope_theta": 10000}"#
        try Data(config.utf8).write(to: URL(fileURLWithPath: configPath))
        let model = directory + "/inspect-model"
        XCTAssertEqual(try lm(["init", "--config", configPath, "--output", model, "--tokenizer", tokenizer]).status, 0)

        let trace = try lm(["trace", "--model", model, "--prompt", "the cat sat", "--top", "3"])
        XCTAssertEqual(trace.status, 0, trace.error)
        let count = try XCTUnwrap(trace.output.split(separator: "\n").first { $0.hasPrefix("tokens (") }.flatMap { line in
            Int(line.dropFirst("tokens (".count).prefix { $0.isNumber }) })
        for expected in ["token_embeddings", "[\(count), 16]", "[\(count), 48]", "[\(count), 24]", "[\(count), 280]", "layers.1.residual + ffn", "next token after"] {
            XCTAssertTrue(trace.output.contains(expected), "trace output lacks \(expected):\n\(trace.output)")
        }
        XCTAssertEqual(trace.output.split(separator: "\n").filter { $0.hasSuffix("'") && $0.contains("%") }.count, 3, trace.output)

        let svg = directory + "/attention.svg"
        let drawn = try lm(["attention", "--model", model, "--prompt", "the cat sat", "--layer", "1", "--output", svg])
        XCTAssertEqual(drawn.status, 0, drawn.error)
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        XCTAssertEqual(text.components(separatedBy: "class=\"cell\"").count - 1, 2 * count * count, "one cell per pair and head")
        let missing = try lm(["attention", "--model", model, "--prompt", "the", "--layer", "2", "--output", svg])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.error.contains("--layer 2 does not exist"), missing.error)

        let shown = try lm(["tokenizer", "show", "--tokenizer", tokenizer, "the cat\tsat"])
        XCTAssertEqual(shown.status, 0, shown.error)
        XCTAssertTrue(shown.output.hasPrefix("[the]("), shown.output)
        XCTAssertTrue(shown.output.contains("⇥"), "a tab is made visible: \(shown.output)")
        let files = try writeLlama2cFiles(vocab: 300, pieces: 300)
        let pieces = try lm(["tokenizer", "show", "--tokenizer", directory, "ab a"])  // the directory holding tokenizer.bin
        XCTAssertEqual(pieces.status, 0, pieces.error)
        XCTAssertTrue(pieces.output.hasPrefix("[<s>](1)"), pieces.output)
        _ = files
    }

    /// The converted reference model (no tokenizer: ids given with --tokens): trace and attention.
    func testInspectionToolsOnTheReferenceModel() throws {
        let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/model").path
        guard FileManager.default.fileExists(atPath: model + "/model.safetensors") else {
            let message = "SKIPPED: reference model \(model) is absent (no ../shared beside the package); the tools did not run on it"
            print(message)
            throw XCTSkip(message)
        }
        let trace = try lm(["trace", "--model", model, "--tokens", "1,20,200,40,5", "--top", "2"])
        XCTAssertEqual(trace.status, 0, trace.error)
        XCTAssertTrue(trace.output.contains("[5, 64]") && trace.output.contains("[5, 300]") && trace.output.contains("#200"), trace.output)
        let svg = directory + "/reference.svg"
        let drawn = try lm(["attention", "--model", model, "--tokens", "1,20,200,40,5", "--head", "3", "--output", svg])
        XCTAssertEqual(drawn.status, 0, drawn.error)
        XCTAssertEqual(try String(contentsOfFile: svg, encoding: .utf8).components(separatedBy: "class=\"cell\"").count - 1, 25)
        let noTokenizer = try lm(["trace", "--model", model, "--prompt", "hello"])
        XCTAssertNotEqual(noTokenizer.status, 0)
        XCTAssertTrue(noTokenizer.error.contains("--tokens"), noTokenizer.error)
    }
}

/// `lm import gguf` and `--model FILE.gguf` on the real two-layer K-quant file.
final class GGUFCommandTests: TemporaryDirectoryTestCase {
    func testImportAndLogitsOnTheQ4KMFixture() throws {
        let fixture = try Fixtures.requireSharedData("smollm2-q4km")
        let gguf = fixture + "/smollm2-2layer-q4_k_m.gguf", model = directory + "/smollm2"
        let imported = try LMProcess.run(["import", "gguf", "--model", gguf, "--output", model])
        XCTAssertEqual(imported.status, 0, imported.error)
        XCTAssertTrue(imported.output.contains("9 heads over 3 KV heads"), imported.output)
        let expected = try NPYFile(path: fixture + "/logits.npy").floats()
        for source in [gguf, model] {
            let output = directory + "/logits.npy"
            let run = try LMProcess.run(["logits", "--model", source, "--tokens", fixture + "/ids.npy", "--output", output])
            XCTAssertEqual(run.status, 0, run.error)
            let logits = try NPYFile(path: output).floats()
            XCTAssertEqual(logits.count, expected.count)
            XCTAssertLessThan(zip(logits, expected).map { abs($0 - $1) }.max() ?? 1, 1e-4, source)
        }
        let again = try LMProcess.run(["import", "gguf", "--model", gguf, "--output", model])
        XCTAssertNotEqual(again.status, 0, "no replacement without --force")
        let notGGUF = directory + "/bad.gguf"
        try Data("GGUF but not really".utf8).write(to: URL(fileURLWithPath: notGGUF))
        let refused = try LMProcess.run(["logits", "--model", notGGUF, "--tokens", fixture + "/ids.npy", "--output", directory + "/x.npy"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.error.contains("bad.gguf"), refused.error)
    }
}
