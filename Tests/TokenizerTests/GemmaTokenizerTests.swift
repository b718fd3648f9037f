import Foundation
import Kernels
import TensorIO
import TestSupport
@testable import Tokenizer
import XCTest

/// Gemma 3's SentencePiece vocabulary read from its GGUF (`models/gemma-3-270m-q4_k_m.gguf`)
/// against llama.cpp's ids (`../shared/data/gemma3/tokens.json`) and Hugging Face `tokenizers`'
/// ids on random hard text (`Fixtures/gemma3_hard_cases.json`); and llama.cpp's algorithm on a
/// small vocabulary built here, where each rule can be seen.
final class GemmaTokenizerTests: XCTestCase {
    struct Case: Decodable { let text: String, ids: [Int32] }

    /// One load for the whole class: 262,144 pieces.
    nonisolated(unsafe) static var loaded: ScoredPieceTokenizer?

    static func gemma() throws -> ScoredPieceTokenizer {
        if let loaded { return loaded }
        let file = try GGUFFile(path: try Fixtures.requireModelFile("gemma-3-270m-q4_k_m.gguf", for: "the Gemma 3 tokenizer comparison"))
        let start = DispatchTime.now().uptimeNanoseconds
        let tokenizer = try XCTUnwrap(try GGUFTokenizer.load(file) as? ScoredPieceTokenizer)
        print("Gemma 3 vocabulary (262,144 pieces) built from the parsed GGUF in \((DispatchTime.now().uptimeNanoseconds - start) / 1_000_000) ms")
        loaded = tokenizer
        return tokenizer
    }

    /// Cases committed beside the tests (excluded from the target, read from the source tree).
    static func committedCases(_ name: String) throws -> [Case] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/" + name)
        return try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
    }

    func testGemma3GivesLlamaCppIds() throws {
        let tokenizer = try Self.gemma()
        XCTAssertEqual(tokenizer.vocabularySize, 262_144)
        XCTAssertFalse(tokenizer.addsSpacePrefix)
        XCTAssertEqual(tokenizer.promptPrefix, [2])
        XCTAssertTrue(tokenizer.stopTokens.isSuperset(of: [1, 106]), "EOS and <end_of_turn> end a generation: \(tokenizer.stopTokens)")
        XCTAssertEqual(tokenizer.id(of: "<end_of_turn>"), 106)
        let path = try Fixtures.requireSharedData("gemma3/tokens.json")
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertGreaterThan(cases.count, 10)
        for (index, item) in cases.enumerated() {
            XCTAssertEqual(tokenizer.encode(item.text), item.ids, "string \(index) \(item.text.debugDescription)")
            XCTAssertEqual(try tokenizer.decode(item.ids), item.text, "decode of string \(index)")
        }
        XCTAssertEqual(tokenizer.encodePrompt("Hello world"), [2, 9259, 1902])
        // The chat template writes <bos> and the turn markers; they are those pieces.
        XCTAssertEqual(tokenizer.encodeChat("<bos><start_of_turn>user\nHi<end_of_turn>\n", bos: "<bos>", eos: "<eos>"),
                       [2, 105] + tokenizer.encode("user") + [107] + tokenizer.encode("Hi") + [106, 107])
    }

    /// The prompts of `gemma3/prompts.json` give the model's input ids (BOS first, as llama.cpp
    /// and transformers gave them), and the ids
    /// the model then generated greedily decode to the recorded continuations.
    func testGemma3PromptsAndGreedyContinuations() throws {
        let tokenizer = try Self.gemma()
        let data = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.requireSharedData("gemma3/prompts.json")))
        let prompts = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        XCTAssertEqual(prompts.count, 2)
        for prompt in prompts {
            let name = try XCTUnwrap(prompt["name"] as? String), text = try XCTUnwrap(prompt["text"] as? String)
            let ids = try NPYFile(path: try Fixtures.requireSharedData("gemma3/\(name)_ids.npy")).integers().map { Int32($0) }
            if text.hasSuffix("…") {
                // The file shortens the long prompt with "…": its ids start with the shortened text's.
                let shortened = tokenizer.encodePrompt(String(text.dropLast()).trimmingCharacters(in: .whitespaces))
                XCTAssertGreaterThan(shortened.count, 10, name)
                XCTAssertEqual(Array(ids.prefix(shortened.count)), shortened, name)
            } else {
                XCTAssertEqual(tokenizer.encodePrompt(text), ids, name)
            }
            let greedy = try NPYFile(path: try Fixtures.requireSharedData("gemma3/\(name)_greedy24.npy")).integers().map { Int32($0) }
            var decoder = IncrementalDecoder(tokenizer: tokenizer)
            decoder.follow(ids.last!)
            var continuation = ""
            for id in greedy { continuation += try decoder.append(id) }
            continuation += decoder.finish()
            XCTAssertEqual(continuation, prompt["greedy24_text"] as? String, name)
        }
    }

    /// Hugging Face `tokenizers` with the tokenizer transformers builds from the same GGUF (which
    /// agrees with llama.cpp on every string of `gemma3/tokens.json`), on 408 seeded random
    /// strings of hard cases: runs of spaces, tabs and newlines (user-defined pieces), digits,
    /// CJK, emoji, combining marks, `▁` written in the text, special pieces whole and cut.
    func testGemma3EqualsHuggingFaceOnRandomHardText() throws {
        let tokenizer = try Self.gemma()
        let cases = try Self.committedCases("gemma3_hard_cases.json")
        XCTAssertGreaterThan(cases.count, 400)
        var failures = 0
        for (index, item) in cases.enumerated() {
            let ids = tokenizer.encode(item.text)
            if ids != item.ids {
                failures += 1
                if failures <= 5 { XCTFail("string \(index) \(item.text.debugDescription): \(ids) but Hugging Face gives \(item.ids)") }
            }
            let decoded = try tokenizer.decode(item.ids)
            if decoded != item.text {
                let a = Array(decoded.utf8), b = Array(item.text.utf8)
                let at = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
                XCTFail("decode of string \(index) differs at byte \(at): \(a[max(0, at - 8)..<min(a.count, at + 8)]) vs \(b[max(0, at - 8)..<min(b.count, at + 8)])")
            }
        }
        XCTAssertEqual(failures, 0, "strings that differ")
    }

    /// Where Hugging Face's tokenizer differs from llama.cpp (and is left out of the random
    /// fixture): it respells Gemma's user-defined runs of spaces (`"  "`, id 138, up to 31 spaces,
    /// id 167) as runs of `▁` and merges them by BPE, while llama.cpp cuts them out of the text
    /// as written, longest first. So a run of 33 spaces is 31 + 2 here (Hugging Face: 16 + 17),
    /// and `▁▁` written in the text is two `▁` pieces (Hugging Face: the run of two spaces).
    func testGemma3RunsOfSpacesAndWrittenEscapesAsLlamaCppCutsThem() throws {
        let tokenizer = try Self.gemma()
        XCTAssertEqual(tokenizer.pieces[138], "  ")
        XCTAssertEqual(tokenizer.pieces[167], String(repeating: " ", count: 31))
        XCTAssertEqual(tokenizer.encode(String(repeating: " ", count: 33)), [167, 138])
        XCTAssertEqual(tokenizer.encode(String(repeating: " ", count: 70) + "a"), [167, 167, 144, 236746])
        XCTAssertEqual(tokenizer.encode("\u{2581}\u{2581}"), [236743, 236743])
        XCTAssertEqual(try tokenizer.decode([236743, 236743]), "  ", "a ▁ piece prints a space")
        // `>▁</` is the one piece with ▁ inside: it joins across the start of a word.
        XCTAssertEqual(tokenizer.encode("> </"), [107068])
    }

    /// Streaming ids through ``IncrementalDecoder`` gives the text back, whole characters only,
    /// even when a character is spelled in byte pieces.
    func testGemma3DecodesStreamedIds() throws {
        let tokenizer = try Self.gemma()
        let text = "Ünïcödé 🤖 and 中文 text\n\n  indented <end_of_turn>"
        let ids = tokenizer.encode(text)
        var decoder = IncrementalDecoder(tokenizer: tokenizer)
        var streamed = ""
        for id in ids {
            let part = try decoder.append(id)
            XCTAssertFalse(part.contains("\u{FFFD}"), "a half character was printed at id \(id)")
            streamed += part
        }
        streamed += decoder.finish()
        XCTAssertEqual(streamed, text)
        // A character without a piece of its own is spelled in byte pieces (<0x..>).
        let rare = "\u{10FFFD}"
        let rareIDs = tokenizer.encode(rare)
        XCTAssertEqual(rareIDs.count, 4)
        XCTAssertTrue(rareIDs.allSatisfy { tokenizer.kinds[Int($0)] == .byte }, "\(rareIDs)")
        XCTAssertEqual(try tokenizer.decode(rareIDs), rare)
    }

    /// The whole encoder (trie and overlap resolution for special pieces, words cut at `▁`, the
    /// word cache, the queue of bigrams) against llama.cpp's procedure written out plainly here:
    /// special pieces cut out token by token, longest first, each at its leftmost non-overlapping
    /// occurrences; every stretch merged whole by rescanning all pairs for the best score. On
    /// random text including what the Hugging Face fixture leaves out (`▁` written in the text,
    /// runs of more than 31 spaces) and pieces that join across words (`> </`).
    func testGemma3EqualsLlamaCppsProcedureWrittenPlainly() throws {
        let tokenizer = try Self.gemma()
        var idOf: [[UInt8]: Int32] = [:]
        idOf.reserveCapacity(tokenizer.pieces.count)
        for (id, piece) in tokenizer.pieces.enumerated() { idOf[Array(piece.utf8)] = Int32(id) }
        var specialOf: [[UInt8]: Int32] = [:]
        for (id, kind) in tokenizer.kinds.enumerated() where [.control, .userDefined, .unknown].contains(kind) {
            specialOf[Array(tokenizer.pieces[id].utf8)] = Int32(id)
        }
        let longestSpecial = specialOf.keys.map(\.count).max() ?? 0
        func bytePiece(_ byte: UInt8) -> Int32 { idOf[Array(String(format: "<0x%02X>", byte).utf8)]! }
        func merge(_ stretch: [UInt8]) -> [Int32] {
            var text: [UInt8] = []
            for byte in stretch { text += byte == 0x20 ? [0xE2, 0x96, 0x81] : [byte] }
            var symbols: [[UInt8]] = []
            var index = 0
            while index < text.count {
                let lead = text[index]
                let length = min(lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4, text.count - index)
                symbols.append(Array(text[index..<(index + length)]))
                index += length
            }
            while true {
                var best: (score: Float, at: Int)?
                for i in 0..<max(symbols.count - 1, 0) {
                    guard let id = idOf[symbols[i] + symbols[i + 1]] else { continue }
                    if best == nil || tokenizer.scores[Int(id)] > best!.score { best = (tokenizer.scores[Int(id)], i) }
                }
                guard let best else { break }
                symbols[best.at] += symbols.remove(at: best.at + 1)
            }
            return symbols.flatMap { idOf[$0].map { [$0] } ?? $0.map(bytePiece) }
        }
        func plain(_ text: String) -> [Int32] {
            let bytes = Array(text.utf8)
            // The special pieces present, in llama.cpp's order.
            var present = Set<Int32>()
            for start in bytes.indices {
                for end in (start + 1)...min(bytes.count, start + longestSpecial) {
                    if let id = specialOf[Array(bytes[start..<end])] { present.insert(id) }
                }
            }
            let order = present.sorted {
                let a = tokenizer.pieces[Int($0)].utf8.count, b = tokenizer.pieces[Int($1)].utf8.count
                return a != b ? a > b : $0 < $1
            }
            // Fragments: (text, nil) or ([], id).
            var fragments: [([UInt8], Int32?)] = bytes.isEmpty ? [] : [(bytes, nil)]
            for id in order {
                let token = Array(tokenizer.pieces[Int(id)].utf8)
                fragments = fragments.flatMap { fragment -> [([UInt8], Int32?)] in
                    guard fragment.1 == nil else { return [fragment] }
                    var parts: [([UInt8], Int32?)] = [], rest = fragment.0[...]
                    while let range = rest.firstRange(of: token) {
                        if range.lowerBound > rest.startIndex { parts.append((Array(rest[..<range.lowerBound]), nil)) }
                        parts.append(([], id))
                        rest = rest[range.upperBound...]
                    }
                    if !rest.isEmpty { parts.append((Array(rest), nil)) }
                    return parts
                }
            }
            return fragments.flatMap { $0.1.map { [$0] } ?? merge($0.0) }
        }
        let units = [" ", " ", "  ", String(repeating: " ", count: 33), String(repeating: " ", count: 64), "\u{2581}", "\u{2581}\u{2581}",
                     "> </", ">\u{2581}</", "\n", "\n\n", "\t", "the", " the", "Hello", "world", "'s", "42", "2024", "中文", "日本語", "🤖",
                     "👨\u{200D}👩\u{200D}👧", "e\u{301}", "\u{10FFFD}", "<start_of_turn>", "<end_of_turn>", "<bos>", "<unused12>", "<b>",
                     "<table>", "<start_of", "_turn>", "<", ">", "</", "Привет", "ß", "x", ".", ",", "!", "(", ")", "\u{7F}", "\u{FEFF}"]
        var generator = SeededGenerator(seed: 2029)
        for index in 0..<300 {
            let text = (0..<Int(generator.next() % 14)).map { _ in units[Int(generator.next() % UInt64(units.count))] }.joined()
            let expected = plain(text), actual = tokenizer.encode(text)
            if actual != expected {
                XCTFail("string \(index) \(text.debugDescription): \(actual) but llama.cpp's procedure gives \(expected)")
                break
            }
        }
    }

    // MARK: - llama.cpp's algorithm on a small vocabulary

    /// A vocabulary where each rule shows: `ab` outscores `bc` and `abc` is absent; `▁` pieces;
    /// control and user-defined pieces, two of them overlapping (`[x`, `x]]`); byte pieces for
    /// `é`'s bytes only; `x>▁<`, a piece across the start of a word.
    static func small(addsSpacePrefix: Bool = false) throws -> ScoredPieceTokenizer {
        let entries: [(String, Float, ScoredPieceTokenizer.PieceKind)] = [
            ("<unk>", 0, .unknown), ("<s>", 0, .control), ("</s>", 0, .control), ("<turn>", 0, .userDefined), ("  ", 0, .userDefined),
            ("[x", 0, .userDefined), ("x]]", 0, .userDefined), ("<0xC3>", 0, .byte), ("<0xA9>", 0, .byte),
            ("a", -1, .normal), ("b", -1, .normal), ("c", -1, .normal), ("\u{2581}", -1, .normal), ("ab", -2, .normal), ("bc", -3, .normal),
            ("\u{2581}a", -4, .normal), ("\u{2581}ab", -5, .normal), ("x", -1, .normal), (">", -1, .normal), ("<", -1, .normal),
            ("x>", -7, .normal), ("\u{2581}<", -8, .normal), ("x>\u{2581}", -8, .normal), ("x>\u{2581}<", -6, .normal),
            ("\u{2581}\u{301}", -9, .normal),
        ]
        return try ScoredPieceTokenizer(pieces: entries.map(\.0), scores: entries.map(\.1), kinds: entries.map(\.2),
                                        addsSpacePrefix: addsSpacePrefix, promptPrefix: [1], stopTokens: [2], bosID: 1, unknownID: 0)
    }

    func testMergesTheHighestScoringPieceFirst() throws {
        let tokenizer = try Self.small()
        func pieces(_ text: String) -> [String] { tokenizer.encode(text).map { tokenizer.pieces[Int($0)] } }
        XCTAssertEqual(pieces("abc"), ["ab", "c"], "ab (−2) merges before bc (−3)")
        XCTAssertEqual(pieces("a ab"), ["a", "\u{2581}ab"], "spaces are ▁; ab, then ▁ab")
        // Ties go to the leftmost pair: x> ▁ < → x>▁ (−8) before ▁< (−8) → x>▁< (−6). Cutting the
        // text into words before the ▁ would give x> ▁<.
        XCTAssertEqual(pieces("x> <"), ["x>\u{2581}<"])
        XCTAssertEqual(pieces("x> < x> <"), ["x>\u{2581}<", "\u{2581}", "x>\u{2581}<"])
    }

    func testSpellsCharactersWithoutPiecesInBytesAndDecodesThemBack() throws {
        let tokenizer = try Self.small()
        XCTAssertEqual(tokenizer.encode("é").map { tokenizer.pieces[Int($0)] }, ["<0xC3>", "<0xA9>"])
        XCTAssertEqual(try tokenizer.decode(tokenizer.encode("aé b")), "aé b")
        // `▁` before a combining mark is one Character; it still prints as a space.
        let combining = try XCTUnwrap(tokenizer.id(of: "\u{2581}\u{301}"))
        XCTAssertEqual(Array(try tokenizer.decode([combining]).utf8), Array(" \u{301}".utf8))
        XCTAssertEqual(tokenizer.encode(" \u{301}"), [combining])
        // `z` has neither a piece nor a byte piece: the unknown piece stands for it.
        XCTAssertEqual(tokenizer.encode("z"), [0])
    }

    func testCutsSpecialPiecesOutInLlamaCppsOrder() throws {
        let tokenizer = try Self.small()
        func pieces(_ text: String, parsing: Bool = true) -> [String] {
            tokenizer.encode(text, parsingSpecialTokens: parsing).map { tokenizer.pieces[Int($0)] }
        }
        XCTAssertEqual(pieces("a<s>b"), ["a", "<s>", "b"])
        // Control pieces only when parsing special tokens; user-defined ones always.
        XCTAssertEqual(pieces("<s>", parsing: false), ["<", "<unk>", ">"])
        XCTAssertEqual(pieces("a  b<turn>", parsing: false), ["a", "  ", "b", "<turn>"])
        // Longest piece first over the whole text, not the longest at each position: x]] (3
        // bytes) is cut out before [x (2 bytes), which starts earlier.
        XCTAssertEqual(pieces("[x]]"), ["<unk>", "x]]"])
        XCTAssertEqual(pieces("[x]"), ["[x", "<unk>"])
    }

    func testDummySpaceBeforeTextAndAfterSpecialPieces() throws {
        let tokenizer = try Self.small(addsSpacePrefix: true)
        func pieces(_ text: String) -> [String] { tokenizer.encode(text).map { tokenizer.pieces[Int($0)] } }
        XCTAssertEqual(pieces("ab"), ["\u{2581}ab"])
        XCTAssertEqual(pieces("ab<turn>ab"), ["\u{2581}ab", "<turn>", "\u{2581}ab"])
        XCTAssertEqual(tokenizer.encodePrompt("ab"), [1] + tokenizer.encode("ab"))
        // The dummy space is not printed at the start, nor after BOS.
        XCTAssertEqual(try tokenizer.decode(tokenizer.encodePrompt("ab")), "<s>ab")
        XCTAssertEqual(try tokenizer.decode(tokenizer.encode("ab")), "ab")
    }

    func testInconsistentTablesAreRefused() {
        XCTAssertThrowsError(try ScoredPieceTokenizer(pieces: ["a"], scores: [0, 1], kinds: [.normal], addsSpacePrefix: false,
                                                      promptPrefix: [], stopTokens: [], bosID: nil, unknownID: nil)) {
            XCTAssertTrue("\($0)".contains("1 pieces, 2 scores"), "\($0)")
        }
        XCTAssertThrowsError(try ScoredPieceTokenizer(pieces: ["a"], scores: [0], kinds: [.normal], addsSpacePrefix: false,
                                                      promptPrefix: [5], stopTokens: [], bosID: nil, unknownID: nil)) {
            XCTAssertTrue("\($0)".contains("token id 5"), "\($0)")
        }
        XCTAssertThrowsError(try ScoredPieceTokenizer(pieces: ["a"], scores: [.nan], kinds: [.normal], addsSpacePrefix: false,
                                                      promptPrefix: [], stopTokens: [], bosID: nil, unknownID: nil)) {
            XCTAssertTrue("\($0)".contains("score of piece 0"), "\($0)")
        }
    }

    /// A vocabulary its encoder cannot work with is refused naming what is missing: bytes with
    /// nothing to stand for them (300 pieces without bytes or an unknown piece, or one byte piece
    /// short), a piece written twice.
    func testVocabulariesWithoutWhatTheEncoderNeedsAreRefused() {
        func make(_ pieces: [String], unknown: Int32? = nil) throws -> ScoredPieceTokenizer {
            try ScoredPieceTokenizer(pieces: pieces, scores: pieces.map { _ in 0 }, kinds: pieces.map { $0.hasPrefix("<0x") ? .byte : .normal },
                                     addsSpacePrefix: false, promptPrefix: [], stopTokens: [], bosID: nil, unknownID: unknown)
        }
        let bytes = (0..<256).map { String(format: "<0x%02X>", $0) }
        XCTAssertNoThrow(try make(["a", "b"] + bytes))
        XCTAssertThrowsError(try make((0..<300).map { "x\($0)" })) {
            XCTAssertTrue("\($0)".contains("no piece for bytes 0x00, 0x01, 0x02 and 253 more and no unknown piece"), "\($0)")
        }
        XCTAssertNoThrow(try make(["<unk>"] + (1..<300).map { "x\($0)" }, unknown: 0), "the unknown piece stands for the bytes")
        XCTAssertThrowsError(try make(["a"] + bytes.filter { $0 != "<0x42>" })) {
            XCTAssertTrue("\($0)".contains("no piece for byte 0x42"), "\($0)")
        }
        XCTAssertNoThrow(try make(["a", "B"] + bytes.filter { $0 != "<0x42>" }), "the byte as a piece of its own stands in, as in llama.cpp")
        XCTAssertThrowsError(try make(["a", "b", "a"] + bytes)) {
            XCTAssertTrue("\($0)".contains("pieces 0 and 2 are both 'a'"), "\($0)")
        }
    }
}
