import Foundation
import TensorIO

/// A Hugging Face `tokenizer.json`: a BPE model with the byte-level pre-tokenizer and decoder,
/// special tokens as added tokens. The Python `tokenizers` library loads it and encodes as we do
/// (`ignore_merges` makes it take a piece that is a whole token as that token, like tiktoken).
public enum HuggingFaceFile {
    /// The file for `tokenizer`, its rules included (pre-tokenizer, `ignore_merges`, BOS in the
    /// post-processor). llama.cpp's `default` rule has no `tokenizer.json` form and is refused.
    static func json(_ tokenizer: Tokenizer) throws -> Data {
        let special = Set(tokenizer.specialTokens.map(\.id))
        var added: [String] = []
        for (text, id) in tokenizer.specialTokens {
            added.append("""
                {"id": \(id), "content": \(JSONText.quoted(text)), "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
            """)
        }
        var vocab: [String] = []
        for (id, bytes) in tokenizer.vocabulary.enumerated() {
            let key = special.contains(Int32(id)) ? String(decoding: bytes, as: UTF8.self) : ByteLevel.encode(bytes)
            vocab.append("      \(JSONText.quoted(key)): \(id)")
        }
        let merges = tokenizer.merges.map {
            "      " + JSONText.quoted(ByteLevel.encode(tokenizer.vocabulary[Int($0.left)]) + " " + ByteLevel.encode(tokenizer.vocabulary[Int($0.right)]))
        }
        let text = """
        {
          "version": "1.0",
          "truncation": null,
          "padding": null,
          "added_tokens": [
        \(added.joined(separator: ",\n"))
          ],
          "normalizer": null,
          "pre_tokenizer": \(try preTokenizerJSON(tokenizer.rules.preTokenization)),
          "post_processor": \(postProcessorJSON(tokenizer)),
          "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
          "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": \(tokenizer.rules.ignoresMerges),
            "vocab": {
        \(vocab.joined(separator: ",\n"))
            },
            "merges": [
        \(merges.joined(separator: ",\n"))
            ]
          }
        }

        """
        return Data(text.utf8)
    }

    /// Reads a `tokenizer.json` with a BPE model and one of the pre-tokenizers of
    /// ``preTokenization(_:path:)``; a BOS that the post-processor puts before a single text
    /// becomes the prompt prefix, and `stopTokens` (from the model's config) the stop tokens.
    /// Errors name the key that is missing or wrong.
    public static func load(path: String, stopTokens: [Int32]? = nil) throws -> Tokenizer {
        let bytes = try GPT2Files.readFile(path)
        var modelType: String?
        var vocabEntries: [(key: [UInt8], id: Int)]?
        var mergePairs: [(left: [UInt8], right: [UInt8])?]?
        var added: [(content: [UInt8], id: Int)] = []
        var preTokenizer: Any?, postProcessor: Any?, ignoresMerges = false
        try bytes.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer, file: path)
            guard scanner.peek() == UInt8(ascii: "{") else { throw TokenizerError("\(path): not a JSON object") }
            try scanner.readObject { scanner, key in
                switch String(decoding: key, as: UTF8.self) {
                case "model":
                    try scanner.readObject { scanner, key in
                        switch String(decoding: key, as: UTF8.self) {
                        case "type": modelType = try scanner.readOptionalString().map { String(decoding: $0, as: UTF8.self) }
                        case "ignore_merges": ignoresMerges = (try readValue(&scanner) as? Bool) ?? false
                        case "vocab":
                            var entries: [(key: [UInt8], id: Int)] = []
                            try scanner.readObject { scanner, key in entries.append((key, try scanner.readInteger(for: key))) }
                            vocabEntries = entries
                        case "merges":
                            var pairs: [(left: [UInt8], right: [UInt8])?] = []
                            try scanner.readArray { scanner, _ in pairs.append(try readMerge(&scanner)) }
                            mergePairs = pairs
                        default: try scanner.skipValue()
                        }
                    }
                case "added_tokens":
                    try scanner.readArray { scanner, index in
                        var content: [UInt8]?, id: Int?
                        try scanner.readObject { scanner, key in
                            switch String(decoding: key, as: UTF8.self) {
                            case "content": content = try scanner.readString()
                            case "id": id = try scanner.readInteger(for: key)
                            default: try scanner.skipValue()
                            }
                        }
                        guard let content, let id else { throw TokenizerError("\(path): added_tokens[\(index)] needs 'id' and 'content'") }
                        added.append((content, id))
                    }
                case "pre_tokenizer": preTokenizer = try readValue(&scanner)
                case "post_processor": postProcessor = try readValue(&scanner)
                default: try scanner.skipValue()
                }
            }
            try scanner.expectEnd()
        }
        guard let modelType else { throw TokenizerError("\(path): missing key 'model' (or 'model.type')") }
        guard modelType == "BPE" else { throw TokenizerError("\(path): key 'model.type' is \(modelType), only BPE is supported") }
        guard let vocabEntries else { throw TokenizerError("\(path): missing key 'model.vocab'") }
        guard let mergePairs else { throw TokenizerError("\(path): missing key 'model.merges'") }
        let specialIDs = Dictionary(added.map { ($0.id, $0.content) }, uniquingKeysWith: { first, _ in first })
        let table = try VocabularyTable(entries: try withAddedTokens(vocabEntries, added, path: path), file: path,
                                        section: "model.vocab or added_tokens ", literal: { id, key in specialIDs[id] == key },
                                        literalWhenNotByteLevel: false)
        var merges: [(left: Int32, right: Int32)] = []
        merges.reserveCapacity(mergePairs.count)
        for (index, pair) in mergePairs.enumerated() {
            guard let pair, let left = table.id(pair.left[...]), let right = table.id(pair.right[...]) else {
                throw TokenizerError("\(path): model.merges[\(index)] is not a pair of vocabulary tokens")
            }
            merges.append((left, right))
        }
        let rules = TokenizerRules(preTokenization: try preTokenization(preTokenizer, path: path), ignoresMerges: ignoresMerges,
                                   promptPrefix: try promptPrefix(postProcessor, path: path), stopTokens: stopTokens,
                                   dropsBytesWithoutToken: true)
        do {
            return try Tokenizer(vocabulary: table.bytes, merges: merges, specialTokens: added.map { String(decoding: $0.content, as: UTF8.self) },
                                 rules: rules)
        } catch let error as TokenizerError {
            throw TokenizerError("\(path): \(error.message)")
        }
    }

    /// The model's vocabulary with the added tokens whose ids lie past it (Llama 3's 256 special
    /// tokens, ids 128000 on, are in `added_tokens` only): the vocabulary then has max id + 1
    /// entries. An added token whose id is in the model's vocabulary must be that entry; ids must
    /// leave no gap.
    static func withAddedTokens(_ vocabulary: [(key: [UInt8], id: Int)], _ added: [(content: [UInt8], id: Int)],
                                path: String) throws -> [(key: [UInt8], id: Int)] {
        let modelIDs = Set(vocabulary.map(\.id))
        var entries = vocabulary
        var extraIDs = Set<Int>()
        for (index, token) in added.enumerated() where !modelIDs.contains(token.id) {
            guard token.id >= 0, token.id < Int(Int32.max) else {
                throw TokenizerError("\(path): added_tokens[\(index)] has id \(token.id), not a token id")
            }
            // The same token listed twice is one entry.
            guard extraIDs.insert(token.id).inserted else { continue }
            entries.append((token.content, token.id))
        }
        let count = entries.count
        if let gap = (0..<count).first(where: { !modelIDs.contains($0) && !extraIDs.contains($0) }) {
            let highest = entries.map(\.id).max() ?? 0
            throw TokenizerError("\(path): no token has id \(gap) in model.vocab or added_tokens, yet ids go up to \(highest); the ids must be 0…\(highest) without gaps")
        }
        return entries
    }

    private static func preTokenizerJSON(_ rule: PreTokenization) throws -> String {
        let byteLevel = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#
        switch rule {
        case .gpt2: return byteLevel
        case .digitsThenGPT2: return #"{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, "# + byteLevel + "]}"
        case .llama3, .qwen2:
            return #"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "# + JSONText.quoted(rule == .llama3 ? llama3Pattern : qwen2Pattern)
                + #"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}"#
        case .llamaCppDefault:
            throw TokenizerError("llama.cpp's 'default' pre-tokenizer has no tokenizer.json form; this tokenizer cannot be saved as one")
        }
    }

    private static func postProcessorJSON(_ tokenizer: Tokenizer) -> String {
        guard !tokenizer.rules.promptPrefix.isEmpty else { return "null" }
        let names = tokenizer.rules.promptPrefix.map { String(decoding: tokenizer.vocabulary[Int($0)], as: UTF8.self) }
        let single = names.map { #"{"SpecialToken": {"id": "# + JSONText.quoted($0) + #", "type_id": 0}}"# }
        let specials = zip(names, tokenizer.rules.promptPrefix).map { JSONText.quoted($0) + #": {"id": "# + JSONText.quoted($0) + #", "ids": [\#($1)], "tokens": ["# + JSONText.quoted($0) + "]}" }
        return #"{"type": "TemplateProcessing", "single": ["# + (single + [#"{"Sequence": {"id": "A", "type_id": 0}}"#]).joined(separator: ", ")
            + #"], "pair": [], "special_tokens": {"# + specials.joined(separator: ", ") + "}}"
    }

    /// Llama 3's `Split` pattern as its `tokenizer.json` writes it.
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen 2's (Qwen 2.5's, Qwen 3's): Llama 3's with `\p{N}` for `\p{N}{1,3}`.
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// The rule a `pre_tokenizer` describes: `ByteLevel` (GPT-2's pattern), `Digits` with
    /// individual digits then `ByteLevel` (SmolLM2), or a `Split` on Llama 3's, Qwen 2's or GPT-2's pattern
    /// then `ByteLevel` without its own pattern. Anything else is refused, described.
    static func preTokenization(_ description: Any?, path: String) throws -> PreTokenization {
        func refuse(_ why: String) -> TokenizerError {
            TokenizerError("\(path): pre_tokenizer \(why); implemented: ByteLevel, Sequence[Digits(individual_digits), ByteLevel], Sequence[Split(Llama 3's, Qwen 2's or GPT-2's pattern), ByteLevel(use_regex false)]")
        }
        guard let object = description as? [String: Any], let type = object["type"] as? String else { throw refuse("is missing or has no type") }
        func isByteLevel(_ step: Any, regex: Bool) -> Bool {
            guard let step = step as? [String: Any], step["type"] as? String == "ByteLevel" else { return false }
            return (step["use_regex"] as? Bool ?? true) == regex && (step["add_prefix_space"] as? Bool ?? false) == false
        }
        if type == "ByteLevel" {
            guard isByteLevel(object, regex: true) else { throw refuse("is ByteLevel with add_prefix_space or without use_regex") }
            return .gpt2
        }
        guard type == "Sequence", let steps = object["pretokenizers"] as? [Any], steps.count == 2 else { throw refuse("has type \(type)") }
        let first = steps[0] as? [String: Any] ?? [:]
        if first["type"] as? String == "Digits", first["individual_digits"] as? Bool == true, isByteLevel(steps[1], regex: true) {
            return .digitsThenGPT2
        }
        if first["type"] as? String == "Split", (first["behavior"] as? String) == "Isolated", (first["invert"] as? Bool ?? false) == false,
           let pattern = (first["pattern"] as? [String: Any])?["Regex"] as? String, isByteLevel(steps[1], regex: false) {
            if pattern == llama3Pattern { return .llama3 }
            if pattern == qwen2Pattern { return .qwen2 }
            if pattern == gpt2Pattern { return .gpt2 }
            throw refuse("splits on the pattern \(pattern)")
        }
        throw refuse("is a sequence of \(steps.compactMap { ($0 as? [String: Any])?["type"] as? String })")
    }

    /// The ids a `TemplateProcessing` post-processor (alone or in a `Sequence`) puts before a
    /// single text: Llama 3's BOS; none for SmolLM2.
    static func promptPrefix(_ description: Any?, path: String) throws -> [Int32] {
        guard let object = description as? [String: Any] else { return [] }
        if object["type"] as? String == "Sequence", let processors = object["processors"] as? [Any] {
            return try processors.flatMap { try promptPrefix($0, path: path) }
        }
        guard object["type"] as? String == "TemplateProcessing", let single = object["single"] as? [[String: Any]] else { return [] }
        let specials = object["special_tokens"] as? [String: Any] ?? [:]
        var prefix: [Int32] = []
        for item in single {
            if item["Sequence"] != nil { break }
            guard let name = (item["SpecialToken"] as? [String: Any])?["id"] as? String else { continue }
            guard let ids = (specials[name] as? [String: Any])?["ids"] as? [Int] else {
                throw TokenizerError("\(path): post_processor.special_tokens has no ids for '\(name)'")
            }
            prefix += ids.map { Int32($0) }
        }
        return prefix
    }

    /// The value at the scanner as Foundation objects (for the small, nested parts of the file).
    private static func readValue(_ scanner: inout JSONScanner) throws -> Any {
        _ = scanner.peek()
        let start = scanner.position
        try scanner.skipValue()
        let data = Data(UnsafeBufferPointer(rebasing: scanner.bytes[start..<scanner.position]))
        do { return try JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) } catch {
            throw TokenizerError("\(scanner.file): a value near byte \(start) is not valid JSON")
        }
    }

    /// One merge: `"left right"` or `["left", "right"]`; nil when it is neither.
    private static func readMerge(_ scanner: inout JSONScanner) throws -> (left: [UInt8], right: [UInt8])? {
        if scanner.peek() == UInt8(ascii: "[") {
            var parts: [[UInt8]] = []
            try scanner.readArray { scanner, _ in parts.append(try scanner.readString()) }
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
        guard scanner.peek() == UInt8(ascii: "\"") else {
            try scanner.skipValue()
            return nil
        }
        let text = try scanner.readString()
        let parts = text.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        return parts.count == 2 ? (Array(parts[0]), Array(parts[1])) : nil
    }
}
