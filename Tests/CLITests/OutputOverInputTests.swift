import Foundation
import TestSupport
import XCTest

/// Every `lm` command that reads files and writes others refuses an output that is, or would
/// overwrite, one of its inputs, however the two are spelled (the same path, a symlink, a hard
/// link, `dir/sub/../name`), before it writes anything: the input stays byte-identical.
final class OutputOverInputTests: TemporaryDirectoryTestCase {
    /// How one path is given a second name.
    enum Spelling: String, CaseIterable {
        case samePath, symlink, hardLink, dotDot
    }

    /// One output option over one input option of a command. `target` is the file or directory
    /// both end up naming; `spellsOutput` says which side gets the other spelling (the output,
    /// or, for a directory output over a file the command would write into it, the input);
    /// `arguments` builds the command line from the spelled path.
    struct Pair {
        let output: String
        let input: String
        let target: String
        let spellsOutput: Bool
        let arguments: (String) -> [String]
    }

    /// `path` under another name, made in `links/<n>/`, keeping its last component (so a
    /// `.gguf` stays a `.gguf`); nil when the spelling cannot name it (a directory's hard link).
    func spell(_ path: String, _ spelling: Spelling, index: Int) throws -> String? {
        let manager = FileManager.default
        let name = (path as NSString).lastPathComponent
        let links = directory + "/links/\(index)"
        try manager.createDirectory(atPath: links, withIntermediateDirectories: true)
        var isDirectory: ObjCBool = false
        _ = manager.fileExists(atPath: path, isDirectory: &isDirectory)
        switch spelling {
        case .samePath:
            return path
        case .symlink:
            try manager.createSymbolicLink(atPath: links + "/" + name, withDestinationPath: path)
            return links + "/" + name
        case .hardLink:
            guard !isDirectory.boolValue else { return nil }
            try manager.linkItem(atPath: path, toPath: links + "/" + name)
            return links + "/" + name
        case .dotDot:
            // links/<n>/up/../../../<path relative to directory>: a walk through a real folder.
            try manager.createDirectory(atPath: links + "/up", withIntermediateDirectories: true)
            let relative = String(path.dropFirst(directory.count + 1))
            return links + "/up/../../../" + relative
        }
    }

    /// Every regular file under `root` with its bytes (links followed), to show nothing changed.
    func snapshot(_ root: String) -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let relative = enumerator?.nextObject() as? String {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[relative] = FileManager.default.contents(atPath: path)
            }
        }
        return files
    }

    func testAnOutputOverItsOwnInputIsRefusedAndTheInputKept() throws {
        let manager = FileManager.default
        let fx = directory + "/fx"
        // Inputs with recognisable bytes: the refusal comes before anything is read, so they
        // need not be valid.
        func file(_ relative: String) throws -> String {
            let path = fx + "/" + relative
            try manager.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data("input \(relative)\n".utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        let text = try file("text.txt"), ids = try file("ids.npy"), config = try file("config.json"), gguf = try file("model.gguf")
        let tok = fx + "/tok", model = fx + "/model", out = fx + "/out"
        for name in ["vocab.json", "merges.txt", "tokenizer.json"] { _ = try file("tok/" + name) }
        for name in ["config.json", "model.safetensors"] { _ = try file("model/" + name) }
        let checkpoint = try file("llama/model.bin"), llamaTokenizer = try file("llama/tokenizer.bin")
        // Files a directory output would write over, sitting in that directory.
        let inOut = try ["vocab.json", "config.json", "model.safetensors", "tokenizer.bin", "model.gguf", "tokens.npy", "corpus.txt"]
            .reduce(into: [String: String]()) { $0[$1] = try file("out/" + $1) }

        let train = ["train", "--steps", "1", "--quiet"]
        let pairs: [Pair] = [
            // An output file over an input file, or over a file of an input directory.
            Pair(output: "--output", input: "--input", target: text, spellsOutput: true) {
                ["tokenizer", "encode", "--tokenizer", tok, "--input", text, "--output", $0, "--quiet"] },
            Pair(output: "--output", input: "--tokenizer", target: tok + "/tokenizer.json", spellsOutput: true) {
                ["tokenizer", "encode", "--tokenizer", tok, "--input", text, "--output", $0, "--quiet"] },
            Pair(output: "--output", input: "--tokens", target: ids, spellsOutput: true) {
                ["logits", "--model", model, "--tokens", ids, "--output", $0] },
            Pair(output: "--output", input: "--model", target: gguf, spellsOutput: true) {
                ["logits", "--model", gguf, "--tokens", ids, "--output", $0] },
            Pair(output: "--grads", input: "--tokens", target: ids, spellsOutput: true) {
                ["loss", "--model", model, "--tokens", ids, "--grads", $0] },
            Pair(output: "--grads", input: "--model", target: model + "/model.safetensors", spellsOutput: true) {
                ["loss", "--model", model, "--tokens", ids, "--grads", $0] },
            Pair(output: "--output", input: "--model", target: gguf, spellsOutput: true) {
                ["export", "gguf", "--model", gguf, "--output", $0, "--force"] },
            Pair(output: "--output", input: "--model", target: gguf, spellsOutput: true) {
                ["attention", "--model", gguf, "--tokens", "1,2", "--output", $0] },
            // A directory output over an input directory.
            Pair(output: "--output", input: "--tokenizer", target: tok, spellsOutput: true) {
                ["init", "--config", config, "--tokenizer", tok, "--output", $0, "--force"] },
            Pair(output: "--output", input: "--model", target: model, spellsOutput: true) {
                ["import", "hf", "--model", model, "--output", $0, "--force"] },
            Pair(output: "--output", input: "--model", target: model, spellsOutput: true) {
                ["quantize", "--model", model, "--type", "q8_0", "--output", $0, "--force"] },
            Pair(output: "--output", input: "--model", target: model, spellsOutput: true) {
                train + ["--model", model, "--train", ids, "--output", $0, "--force"] },
            Pair(output: "--output", input: "--tokenizer", target: tok, spellsOutput: true) {
                train + ["--config", config, "--tokenizer", tok, "--train", ids, "--output", $0] },
            // A directory output that would write over an input file in it.
            Pair(output: "--output", input: "--input", target: inOut["vocab.json"]!, spellsOutput: false) {
                ["tokenizer", "train", "--input", $0, "--vocab-size", "300", "--output", out, "--quiet"] },
            Pair(output: "--output", input: "--config", target: inOut["config.json"]!, spellsOutput: false) {
                ["init", "--config", $0, "--output", out, "--force"] },
            Pair(output: "--output", input: "--checkpoint", target: inOut["model.safetensors"]!, spellsOutput: false) {
                ["import", "llama2c", "--checkpoint", $0, "--tokenizer", llamaTokenizer, "--output", out, "--force"] },
            Pair(output: "--output", input: "--tokenizer", target: inOut["tokenizer.bin"]!, spellsOutput: false) {
                ["import", "llama2c", "--checkpoint", checkpoint, "--tokenizer", $0, "--output", out, "--force"] },
            Pair(output: "--output", input: "--model", target: inOut["model.gguf"]!, spellsOutput: false) {
                ["import", "gguf", "--model", $0, "--output", out, "--force"] },
            Pair(output: "--output", input: "--model", target: inOut["model.gguf"]!, spellsOutput: false) {
                ["quantize", "--model", $0, "--type", "q4_0", "--output", out, "--force"] },
            Pair(output: "--output", input: "--train", target: inOut["tokens.npy"]!, spellsOutput: false) {
                train + ["--config", config, "--train", $0, "--output", out, "--force"] },
            Pair(output: "--output", input: "--validation", target: inOut["tokens.npy"]!, spellsOutput: false) {
                train + ["--config", config, "--train", ids, "--validation", $0, "--output", out, "--force"] },
            Pair(output: "--output", input: "--config", target: inOut["config.json"]!, spellsOutput: false) {
                train + ["--config", $0, "--train", ids, "--output", out, "--force"] },
            Pair(output: "--output", input: "--input", target: inOut["corpus.txt"]!, spellsOutput: false) {
                ["demo", "--input", $0, "--output", out, "--minutes", "0.1", "--quiet"] },
        ]
        var index = 0, runs = 0
        for pair in pairs {
            for spelling in Spelling.allCases {
                index += 1
                guard let spelled = try spell(pair.target, spelling, index: index) else { continue }
                let arguments = pair.arguments(spelled)
                let before = snapshot(directory)
                let result = try LMProcess.run(arguments)
                runs += 1
                let label = "\(spelling.rawValue): lm \(arguments.joined(separator: " "))"
                XCTAssertNotEqual(result.status, 0, label)
                XCTAssertTrue(result.error.contains(pair.output) && result.error.contains("the input \(pair.input)")
                              && result.error.contains("destroy"), "\(label)\n\(result.error)")
                XCTAssertEqual(snapshot(directory), before, "\(label): nothing is written, every input is byte-identical")
            }
        }
        XCTAssertGreaterThan(runs, 70)
        // The same commands with distinct files do run (the refusal is not a blanket one).
        let encoded = try LMProcess.run(["tokenizer", "encode", "--tokenizer", tok, "--input", text, "--output", fx + "/new.npy", "--quiet"])
        XCTAssertFalse(encoded.error.contains("destroy"), encoded.error)
    }

    /// `lm tokenizer decode >> ids.npy`: its standard output is its input, refused before a byte
    /// is written.
    func testStandardOutputOverTheInputIsRefused() throws {
        let text = directory + "/text.txt", ids = directory + "/ids.npy", tok = directory + "/tok"
        try Data("hello world, hello there\n".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertEqual(try LMProcess.run(["tokenizer", "train", "--input", text, "--vocab-size", "260", "--output", tok, "--quiet"]).status, 0)
        XCTAssertEqual(try LMProcess.run(["tokenizer", "encode", "--tokenizer", tok, "--input", text, "--output", ids, "--quiet"]).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: ids))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try builtExecutable("lm"))
        process.arguments = ["tokenizer", "decode", "--tokenizer", tok, "--input", ids]
        let appending = try XCTUnwrap(FileHandle(forWritingAtPath: ids))
        appending.seekToEndOfFile()
        process.standardOutput = appending
        let error = Pipe()
        process.standardError = error
        try process.run()
        let message = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try appending.close()
        XCTAssertNotEqual(process.terminationStatus, 0)
        XCTAssertTrue(message.contains("standard output is the input --input \(ids)"), message)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: ids)), before)
    }
}
