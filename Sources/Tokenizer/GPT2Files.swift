import Foundation
import TensorIO

/// GPT-2's `vocab.json` (token text → id, bytes written through ``ByteLevel``) and
/// `merges.txt` (`#version: 0.2`, then one `left right` pair per line, in rank order).
public enum GPT2Files {
    /// Reads a vocabulary and its merges. Special tokens are the `specialTokens` given, plus any
    /// vocabulary entry that is neither a single byte nor the result of a merge (as
    /// `<|endoftext|>` in GPT-2's own files). Errors name the file and the line or key.
    public static func load(vocab vocabPath: String, merges mergesPath: String, specialTokens: [String] = []) throws -> Tokenizer {
        let vocabBytes = try readFile(vocabPath)
        var entries: [(key: [UInt8], id: Int)] = []
        entries.reserveCapacity(vocabBytes.count / 16)
        try vocabBytes.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer, file: vocabPath)
            guard scanner.peek() == UInt8(ascii: "{") else { throw TokenizerError("\(vocabPath): not a JSON object of token → id") }
            try scanner.readObject { scanner, key in entries.append((key, try scanner.readInteger(for: key))) }
            try scanner.expectEnd()
        }
        let table = try VocabularyTable(entries: entries, file: vocabPath, section: "", literal: { _, _ in false },
                                        literalWhenNotByteLevel: true)

        let mergesBytes = try readFile(mergesPath)
        guard String(validating: mergesBytes, as: UTF8.self) != nil else {
            throw TokenizerError("\(mergesPath): cannot read as UTF-8 text")
        }
        var merges: [(left: Int32, right: Int32)] = []
        merges.reserveCapacity(table.count)
        var produced = [Bool](repeating: false, count: table.count)
        var joined: [UInt8] = []
        var lineStart = 0, number = 0
        while lineStart < mergesBytes.count {
            let lineEnd = mergesBytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? mergesBytes.count
            defer { lineStart = lineEnd + 1 }
            number += 1
            var line = mergesBytes[lineStart..<lineEnd]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.isEmpty || (number == 1 && line.starts(with: "#version".utf8)) { continue }
            let space = line.firstIndex(of: UInt8(ascii: " "))
            let left = space.map { line[..<$0] } ?? line, right = space.map { line[($0 + 1)...] } ?? []
            guard space != nil, !right.contains(UInt8(ascii: " ")), let leftID = table.id(left), let rightID = table.id(right) else {
                throw TokenizerError("\(mergesPath): line \(number) ('\(String(decoding: line, as: UTF8.self))') is not two vocabulary tokens separated by a space")
            }
            joined.removeAll(keepingCapacity: true)
            joined += left
            joined += right
            guard let result = table.id(joined[...]) else {
                throw TokenizerError("\(mergesPath): line \(number): the merge result '\(String(decoding: joined, as: UTF8.self))' is not in \(vocabPath)")
            }
            merges.append((leftID, rightID))
            produced[Int(result)] = true
        }
        var specials = specialTokens
        for id in 0..<table.count where table.isLiteral[id] || (table.bytes[id].count > 1 && !produced[id]) {
            let text = String(decoding: table.bytes[id], as: UTF8.self)
            if !specials.contains(text) { specials.append(text) }
        }
        do {
            return try Tokenizer(vocabulary: table.bytes, merges: merges, specialTokens: specials)
        } catch let error as TokenizerError {
            throw TokenizerError("\(vocabPath): \(error.message)")
        }
    }

    /// The whole file's bytes; the error names the file.
    static func readFile(_ path: String) throws -> [UInt8] {
        do { return [UInt8](try InputFile.read(path)) } catch let error as TensorFileError {
            throw TokenizerError(error.description)
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
