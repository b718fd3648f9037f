import Foundation
import Kernels
import TestSupport
import Tokenizer
import XCTest

final class SentencePieceTokenizerTests: XCTestCase {
    static func fixtureTokenizer() throws -> SentencePieceTokenizer {
        try SentencePieceTokenizer(path: Fixtures.requireSharedData("llama2c/tokenizer.bin"))
    }

    /// Our encoder gives the ids llama2.c's run.c gives, and decoding gives the text back.
    func testEncodesAsLlama2cAndDecodesBack() throws {
        let tokenizer = try Self.fixtureTokenizer()
        XCTAssertEqual(tokenizer.vocabularySize, 32_000)
        XCTAssertEqual(tokenizer.encode("Hello", bos: false), [15043], "the dummy space merges into the first token")
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.requireSharedData("llama2c/tokenizer_expected.json")))
        let cases = try XCTUnwrap((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["cases"] as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 5)
        for entry in cases {
            let text = try XCTUnwrap(entry["text"] as? String), ids = try XCTUnwrap(entry["ids"] as? [Int]).map(Int32.init)
            XCTAssertEqual(tokenizer.encode(text), ids, "encode \(text.debugDescription)")
            XCTAssertEqual(try tokenizer.decode(ids), text, "decode of \(text.debugDescription)")
        }
    }

    /// The file is read and written back byte for byte.
    func testFileRoundTrips() throws {
        let path = try Fixtures.requireSharedData("llama2c/tokenizer.bin")
        let tokenizer = try SentencePieceTokenizer(path: path)
        XCTAssertEqual(tokenizer.fileData(), try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The heap-based merge loop against run.c's own algorithm (rescan every pair, merge the
    /// best, leftmost on ties), written out plainly here, on random text from a hard alphabet.
    func testHeapMergesEqualRunCsRescanOnRandomText() throws {
        let tokenizer = try Self.fixtureTokenizer()
        let alphabet = Array("aeiou tnsrhld TSWA.,'!?\n\t  xyzqé日本😀ÀΩ0123456789-").map(String.init)
        var generator = SeededGenerator(seed: 7)
        for index in 0..<300 {
            // Half from a small alphabet (many merges), half hard-case text (the GPT-2 tests' mix).
            let text = index % 2 == 0
                ? (0..<Int.random(in: 0..<60, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }.joined()
                : HardCaseText.random(&generator)
            // Without BOS the first token can merge too (the fuzzer found a crash there).
            let bos = index % 4 != 3
            XCTAssertEqual(tokenizer.encode(text, bos: bos), Self.runCEncode(tokenizer, text, bos: bos), "string \(index) (BOS \(bos)): \(text.debugDescription)")
        }
    }

    /// Damaged files: an error naming the file and the piece, never a crash.
    func testMalformedFilesAreRefusedWithTheirPosition() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var valid = Data()
        func int32(_ v: Int32) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
        valid += int32(8)
        for i in 0..<300 { valid += int32(0) + int32(1) + Data([UInt8(i % 256)]) }
        let cases: [(String, Data, String)] = [
            ("empty", Data(), "too short"),
            ("truncated", valid.prefix(valid.count - 3), "piece 299"),
            ("negative length", int32(8) + int32(0) + int32(-5), "piece 0"),
            ("too few pieces", int32(8) + int32(0) + int32(1) + Data([65]), "256 byte pieces"),
            ("bad header", int32(0) + valid.dropFirst(4), "longest piece length 0"),
        ]
        for (name, data, expected) in cases {
            let path = directory.appendingPathComponent("\(name.replacingOccurrences(of: " ", with: "_")).bin").path
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try SentencePieceTokenizer(path: path), name) { error in
                XCTAssertTrue("\(error)".contains(path) && "\(error)".contains(expected), "\(name): \(error)")
            }
        }
    }

    /// run.c's encode, transcribed: per-character lookup or byte fallback, then merge the best
    /// scoring pair (first one on ties) until none is left.
    static func runCEncode(_ t: SentencePieceTokenizer, _ text: String, bos: Bool = true) -> [Int32] {
        var lookup: [[UInt8]: Int32] = [:]
        for (id, piece) in t.pieces.enumerated() where lookup[piece] == nil { lookup[piece] = Int32(id) }
        var tokens: [Int32] = bos ? [1] : []
        let bytes = Array(text.utf8)
        if !bytes.isEmpty { tokens.append(lookup[[32]]!) }
        var i = 0
        while i < bytes.count {
            var j = i + 1
            while j < bytes.count && bytes[j] & 0xC0 == 0x80 && j - i < 4 { j += 1 }
            if let id = lookup[Array(bytes[i..<j])] { tokens.append(id) } else { tokens += bytes[i..<j].map { Int32($0) + 3 } }
            i = j
        }
        while true {
            var best: (score: Float, index: Int, id: Int32)?
            for k in 0..<max(0, tokens.count - 1) {
                if let id = lookup[t.pieces[Int(tokens[k])] + t.pieces[Int(tokens[k + 1])]], t.scores[Int(id)] > (best?.score ?? -1e10) {
                    best = (t.scores[Int(id)], k, id)
                }
            }
            guard let best else { break }
            tokens[best.index] = best.id
            tokens.remove(at: best.index + 1)
        }
        return tokens
    }

    /// What run.c's encoder uses by id must be there: BOS and EOS at 1 and 2, the byte pieces at
    /// 3…258 (bytes are encoded as id byte + 3), no piece twice; the message names what is missing.
    func testLayoutsRunCCannotEncodeWithAreRefused() throws {
        func text(_ value: String) -> [UInt8] { Array(value.utf8) }
        let bytes = (0..<256).map { text(String(format: "<0x%02X>", $0)) }
        let valid = [text("<unk>"), text("\n<s>\n"), text("\n</s>\n")] + bytes + [text(" "), text("a")]
        func make(_ pieces: [[UInt8]]) throws -> SentencePieceTokenizer {
            try SentencePieceTokenizer(pieces: pieces, scores: pieces.map { _ in 0 })
        }
        XCTAssertNoThrow(try make(valid), "llama2.c's export writes BOS and EOS between newlines")
        var noBytes = valid
        noBytes[3 + 0x41] = text("A")
        let cases: [(String, [[UInt8]], String)] = [
            ("300 pieces all x", Array(repeating: text("x"), count: 300), "piece 1 is 'x', not <s>"),
            ("no EOS", [valid[0], valid[1], text("eos")] + valid.dropFirst(3), "piece 2 is 'eos', not </s>"),
            ("a byte piece missing", noBytes, "the byte pieces are missing for byte 0x41: id 68 is 'A', not <0x41>"),
            ("a piece twice", valid + [text("a")], "pieces 260 and 261 are both 'a'"),
        ]
        for (name, pieces, expected) in cases {
            XCTAssertThrowsError(try make(pieces), name) { XCTAssertTrue("\($0)".contains(expected), "\(name): \($0)") }
        }
    }
}
