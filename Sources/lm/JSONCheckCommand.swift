import ArgumentParser
import Foundation
import Model
import Tokenizer

/// `lm json-check`: reads JSON documents against a schema with the recognizer that constrains
/// decoding (`--json-schema`, `response_format`), so a user can see what a schema lets through
/// before generating with it, and a differential test can compare it with another validator.
struct JSONCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json-check",
        abstract: "Check JSON documents against a schema with the recognizer that constrains decoding.",
        discussion: """
            DOCUMENTS holds one document a line, each written as a JSON string (so that any text, \
            whitespace and broken JSON included, fits on a line). For each line one JSON object is \
            printed: {"valid": true} or {"valid": false, "at": BYTE, "reason": …}, where BYTE is the \
            offset of the first byte no valid document could have there (the length when the text \
            is a valid but unfinished prefix). With --tokenizer, a valid document also gets \
            "reachable": whether constrained decoding can write it token by token in that \
            tokenizer's own split (each token allowed by the mask, the stop token at the end).
            """)

    @Option(help: "The JSON schema (the subset constrained decoding supports).") var schema: String
    @Option(help: "A tokenizer directory or .gguf file: also check each valid document is reachable token by token.")
    var tokenizer: String?
    @Argument(help: "The documents: one JSON string a line (default: standard input).") var documents: String?

    func run() throws {
        let compiled = try GenerateCommand.schema(at: schema, option: "--schema")
        let text: String
        if let documents {
            guard let data = FileManager.default.contents(atPath: documents), let string = String(data: data, encoding: .utf8) else {
                throw ValidationError("\(documents): cannot read it as UTF-8 text")
            }
            text = string
        } else {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        let reachability = try tokenizer.map { path -> (any TextTokenizer, Set<Int32>) in
            guard let loaded = try TokenizerDirectory.loadAny(path) else {
                throw ValidationError("--tokenizer \(path): no tokenizer files (tokenizer.json, vocab.json + merges.txt, tokenizer.bin or a .gguf)")
            }
            return (loaded, loaded.stopTokens)
        }
        let name = documents ?? "standard input"
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            guard let document = (try? JSONValue(parsing: Data(line.utf8)))?.string else {
                throw ValidationError("\(name) line \(index + 1): not a JSON string (each line holds one document written as a JSON string)")
            }
            var verdict = Self.verdict(Array(document.utf8), compiled)
            if verdict["valid"] == .bool(true), let (tokenizer, stops) = reachability {
                verdict["reachable"] = .bool(Self.reachable(document, compiled, tokenizer: tokenizer, stops: stops))
            }
            print(JSONValue.object(verdict).compactText)
        }
    }

    /// Reads `bytes` with the recognizer: valid, or where and why not.
    static func verdict(_ bytes: [UInt8], _ schema: JSONSchema) -> [String: JSONValue] {
        var recognizer = JSONRecognizer(schema)
        for (offset, byte) in bytes.enumerated() {
            recognizer.read(byte)
            if !recognizer.isAlive {
                return ["valid": .bool(false), "at": .number(Double(offset)), "reason": .string("no valid document has this byte here")]
            }
        }
        if recognizer.isComplete { return ["valid": .bool(true)] }
        return ["valid": .bool(false), "at": .number(Double(bytes.count)), "reason": .string("a valid prefix, not a whole document")]
    }

    /// Whether the constraint allows each token of `document`'s own tokenization in turn, then a
    /// stop token: the document can be generated.
    static func reachable(_ document: String, _ schema: JSONSchema, tokenizer: any TextTokenizer, stops: Set<Int32>) -> Bool {
        var constraint = JSONConstraint(schema: schema, vocabulary: TokenVocabulary.shared(for: tokenizer, excluded: stops), stops: stops)
        for token in tokenizer.encodeChat(document, bos: "", eos: "") {
            guard constraint.allowedTokens()[Int(token)] else { return false }
            constraint.learn(token)
        }
        let allowed = constraint.allowedTokens()
        return stops.isEmpty || stops.contains { Int($0) < allowed.count && allowed[Int($0)] }
    }
}
