import Foundation
import TensorIO

/// A Hugging Face `tokenizer.json`: a BPE model with the byte-level pre-tokenizer and decoder,
/// special tokens as added tokens. The Python `tokenizers` library loads it and encodes as we do
/// (`ignore_merges` makes it take a piece that is a whole token as that token, like tiktoken).
public enum HuggingFaceFile {
    static func json(_ tokenizer: Tokenizer) -> Data {
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
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
          "post_processor": null,
          "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
          "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": true,
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

    /// Reads a `tokenizer.json` of this shape (BPE model, byte-level pre-tokenizer). Errors name
    /// the key that is missing or wrong.
    public static func load(path: String) throws -> Tokenizer {
        let bytes = try GPT2Files.readFile(path)
        var modelType: String?
        var vocabEntries: [(key: [UInt8], id: Int)]?
        var mergePairs: [(left: [UInt8], right: [UInt8])?]?
        var added: [(content: [UInt8], id: Int)] = []
        try bytes.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer, file: path)
            guard scanner.peek() == UInt8(ascii: "{") else { throw TokenizerError("\(path): not a JSON object") }
            try scanner.readObject { scanner, key in
                switch String(decoding: key, as: UTF8.self) {
                case "model":
                    try scanner.readObject { scanner, key in
                        switch String(decoding: key, as: UTF8.self) {
                        case "type": modelType = try scanner.readOptionalString().map { String(decoding: $0, as: UTF8.self) }
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
                case "pre_tokenizer":
                    guard scanner.peek() == UInt8(ascii: "{") else { return try scanner.skipValue() }
                    try scanner.readObject { scanner, key in
                        guard String(decoding: key, as: UTF8.self) == "type" else { return try scanner.skipValue() }
                        guard try scanner.readOptionalString() == Array("ByteLevel".utf8) else {
                            throw TokenizerError("\(path): key 'pre_tokenizer.type' must be ByteLevel")
                        }
                    }
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
        let table = try VocabularyTable(entries: vocabEntries, file: path, section: "model.vocab ",
                                        literal: { id, key in specialIDs[id] == key }, literalWhenNotByteLevel: false)
        var merges: [(left: Int32, right: Int32)] = []
        merges.reserveCapacity(mergePairs.count)
        for (index, pair) in mergePairs.enumerated() {
            guard let pair, let left = table.id(pair.left[...]), let right = table.id(pair.right[...]) else {
                throw TokenizerError("\(path): model.merges[\(index)] is not a pair of vocabulary tokens")
            }
            merges.append((left, right))
        }
        do {
            return try Tokenizer(vocabulary: table.bytes, merges: merges, specialTokens: added.map { String(decoding: $0.content, as: UTF8.self) })
        } catch let error as TokenizerError {
            throw TokenizerError("\(path): \(error.message)")
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
