import Foundation

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
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TokenizerError("\(path): cannot read: \(error.localizedDescription)")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TokenizerError("\(path): not a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else { throw TokenizerError("\(path): missing key 'model'") }
        guard (model["type"] as? String) == "BPE" else {
            throw TokenizerError("\(path): key 'model.type' is \(model["type"].map { "\($0)" } ?? "missing"), only BPE is supported")
        }
        if let preTokenizer = root["pre_tokenizer"] as? [String: Any], (preTokenizer["type"] as? String) != "ByteLevel" {
            throw TokenizerError("\(path): key 'pre_tokenizer.type' must be ByteLevel")
        }
        guard let vocabObject = model["vocab"] as? [String: Any] else { throw TokenizerError("\(path): missing key 'model.vocab'") }
        guard let mergeList = model["merges"] as? [Any] else { throw TokenizerError("\(path): missing key 'model.merges'") }
        var specialTexts: [(String, Int)] = []
        for (index, item) in ((root["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let token = item as? [String: Any], let content = token["content"] as? String, let id = token["id"] as? Int else {
                throw TokenizerError("\(path): added_tokens[\(index)] needs 'id' and 'content'")
            }
            specialTexts.append((content, id))
        }
        let specialIDs = Dictionary(specialTexts.map { ($0.1, $0.0) }, uniquingKeysWith: { a, _ in a })
        var vocabulary = [[UInt8]?](repeating: nil, count: vocabObject.count)
        var idForText: [String: Int32] = [:]
        for (text, value) in vocabObject {
            guard let id = value as? Int, id >= 0, id < vocabObject.count, vocabulary[id] == nil else {
                throw TokenizerError("\(path): model.vocab key '\(text)' has a bad or repeated id \(value)")
            }
            if specialIDs[id] == text {
                vocabulary[id] = Array(text.utf8)
            } else {
                guard let bytes = ByteLevel.decode(text) else {
                    throw TokenizerError("\(path): model.vocab key '\(text)' is not byte-level text and not an added token")
                }
                vocabulary[id] = bytes
            }
            idForText[text] = Int32(id)
        }
        var merges: [(left: Int32, right: Int32)] = []
        for (index, item) in mergeList.enumerated() {
            let parts: [String]
            if let text = item as? String {
                parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else if let pair = item as? [String] {
                parts = pair
            } else {
                parts = []
            }
            guard parts.count == 2, let left = idForText[parts[0]], let right = idForText[parts[1]] else {
                throw TokenizerError("\(path): model.merges[\(index)] is not a pair of vocabulary tokens")
            }
            merges.append((left, right))
        }
        do {
            return try Tokenizer(vocabulary: vocabulary.map { $0! }, merges: merges, specialTokens: specialTexts.map(\.0))
        } catch let error as TokenizerError {
            throw TokenizerError("\(path): \(error.message)")
        }
    }
}
