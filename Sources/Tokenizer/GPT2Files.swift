import Foundation

/// GPT-2's `vocab.json` (token text → id, bytes written through ``ByteLevel``) and
/// `merges.txt` (`#version: 0.2`, then one `left right` pair per line, in rank order).
public enum GPT2Files {
    /// Reads a vocabulary and its merges. Special tokens are the `specialTokens` given, plus any
    /// vocabulary entry that is neither a single byte nor the result of a merge (as
    /// `<|endoftext|>` in GPT-2's own files). Errors name the file and the line or key.
    public static func load(vocab vocabPath: String, merges mergesPath: String, specialTokens: [String] = []) throws -> Tokenizer {
        let vocabData: Data
        do { vocabData = try Data(contentsOf: URL(fileURLWithPath: vocabPath)) } catch {
            throw TokenizerError("\(vocabPath): cannot read: \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: vocabData), let entries = object as? [String: Any] else {
            throw TokenizerError("\(vocabPath): not a JSON object of token → id")
        }
        var vocabulary = [[UInt8]?](repeating: nil, count: entries.count)
        var idForText: [String: Int32] = [:]
        var literal = Set<Int32>()  // entries outside the byte alphabet: special tokens
        for (text, value) in entries {
            guard let id = value as? Int, id >= 0, id < entries.count else {
                throw TokenizerError("\(vocabPath): key '\(text)' has id \(value), expected an integer in 0..<\(entries.count)")
            }
            guard vocabulary[id] == nil else { throw TokenizerError("\(vocabPath): id \(id) is used twice (key '\(text)')") }
            if let bytes = ByteLevel.decode(text) {
                vocabulary[id] = bytes
            } else {
                vocabulary[id] = Array(text.utf8)
                literal.insert(Int32(id))
            }
            idForText[text] = Int32(id)
        }
        let vocab = vocabulary.map { $0! }

        let mergesText: String
        do { mergesText = try String(contentsOfFile: mergesPath, encoding: .utf8) } catch {
            throw TokenizerError("\(mergesPath): cannot read as UTF-8 text")
        }
        var merges: [(left: Int32, right: Int32)] = []
        var produced = Set<Int32>()
        for (number, line) in mergesText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
            if trimmed.isEmpty || (number == 0 && trimmed.hasPrefix("#version")) { continue }
            let parts = trimmed.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, let left = idForText[String(parts[0])], let right = idForText[String(parts[1])] else {
                throw TokenizerError("\(mergesPath): line \(number + 1) ('\(trimmed)') is not two vocabulary tokens separated by a space")
            }
            guard let result = idForText[String(parts[0]) + String(parts[1])] else {
                throw TokenizerError("\(mergesPath): line \(number + 1): the merge result '\(parts[0])\(parts[1])' is not in \(vocabPath)")
            }
            merges.append((left, right))
            produced.insert(result)
        }
        var specials = specialTokens
        for id in 0..<Int32(vocab.count) where literal.contains(id) || (vocab[Int(id)].count > 1 && !produced.contains(id)) {
            let text = String(decoding: vocab[Int(id)], as: UTF8.self)
            if !specials.contains(text) { specials.append(text) }
        }
        do {
            return try Tokenizer(vocabulary: vocab, merges: merges, specialTokens: specials)
        } catch let error as TokenizerError {
            throw TokenizerError("\(vocabPath): \(error.message)")
        }
    }

    /// `vocab.json`, ids in increasing order, special tokens as their literal text.
    static func vocabJSON(_ tokenizer: Tokenizer) -> Data {
        let special = Set(tokenizer.specialTokens.map(\.id))
        var text = "{"
        for (id, bytes) in tokenizer.vocabulary.enumerated() {
            let key = special.contains(Int32(id)) ? String(decoding: bytes, as: UTF8.self) : ByteLevel.encode(bytes)
            text += (id == 0 ? "\n  " : ",\n  ") + JSONText.quoted(key) + ": \(id)"
        }
        text += "\n}\n"
        return Data(text.utf8)
    }

    /// `merges.txt` with the `#version: 0.2` header.
    static func mergesText(_ tokenizer: Tokenizer) -> Data {
        var text = "#version: 0.2\n"
        for merge in tokenizer.merges {
            text += ByteLevel.encode(tokenizer.vocabulary[Int(merge.left)]) + " " + ByteLevel.encode(tokenizer.vocabulary[Int(merge.right)]) + "\n"
        }
        return Data(text.utf8)
    }
}

/// JSON string quoting for hand-written JSON (the files keep id order, which
/// JSONSerialization's dictionaries cannot).
enum JSONText {
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                result += String(format: "\\u%04x", scalar.value)
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
