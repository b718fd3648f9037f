import Foundation
import Kernels
@testable import Tokenizer
import XCTest

/// Differential tests of every exactness claim the tokenizer makes: the hand-compiled
/// pre-tokenizer against the pattern run by `Regex`, and every way of cutting text (safe cuts,
/// streaming blocks, parallel chunks, parallel training counts) against the whole text.
/// Fixed seeds; the first failing string is printed.
final class PreTokenizerDifferentialTests: XCTestCase {
    let reference = try! RegexPreTokenizer()

    /// A tokenizer trained on hard-case text, so that merges join whitespace runs, apostrophes
    /// and the rest (a cut in the wrong place then changes the ids, not only the pieces).
    static let tokenizer: Tokenizer = {
        var generator = SeededGenerator(seed: 41)
        var text = ""
        for _ in 0..<4000 { text += HardCaseText.random(&generator) }
        var bytes = Array(text.utf8)
        return try! bytes.withUnsafeMutableBufferPointer {
            try BPETrainer.train(bytes: UnsafeBufferPointer($0),
                                 options: BPETrainingOptions(vocabSize: 600, specialTokens: [HardCaseText.special], threads: 1))
        }
    }()

    func testPreTokenizerEqualsThePatternOnRandomStrings() {
        var generator = SeededGenerator(seed: 7)
        for index in 0..<100_000 {
            let text = HardCaseText.random(&generator, maximumUnits: 12)
            let expected = reference.pieces(text)
            let actual = PreTokenizer.pieces(text)
            if actual != expected {
                XCTFail("string \(index) \(text.debugDescription): pre-tokenizer gave \(actual.map(show)), the pattern \(expected.map(show))")
                return
            }
        }
    }

    func testEveryCutIsExact() throws {
        let tokenizer = Self.tokenizer
        let encoder = tokenizer.makeEncoder()
        let noSpecials = SpecialTokenMatcher([])
        var generator = SeededGenerator(seed: 8)
        var safeCutsSeen = 0
        for index in 0..<2500 {
            let text = HardCaseText.random(&generator, maximumUnits: 10)
            let bytes = Array(text.utf8)
            let whole = tokenizer.encode(text)
            let context = "string \(index) \(text.debugDescription)"

            // The encoder's pieces are the pattern's: encoding each pattern piece alone gives the same ids.
            var expected: [Int32] = []
            for segment in HardCaseText.segments(bytes) {
                guard let range = segment.text else {
                    expected.append(tokenizer.specialTokenID(HardCaseText.special)!)
                    continue
                }
                for piece in reference.pieces(bytes[range]) {
                    piece.withUnsafeBufferPointer { encoder.encodePiece($0, into: &expected) }
                }
            }
            guard whole == expected else { return XCTFail("\(context): encoded \(whole), pattern pieces give \(expected)") }

            try bytes.withUnsafeBufferPointer { buffer in
                for cut in 1..<max(bytes.count, 1) {
                    // Every place SafeCuts accepts is exact, for the pattern alone and with special tokens.
                    if SafeCuts.isScalarStart(buffer[cut]) && SafeCuts.isSafe(buffer, at: cut, specials: noSpecials) {
                        safeCutsSeen += 1
                        let sides = reference.pieces(bytes[..<cut]) + reference.pieces(bytes[cut...])
                        guard sides == reference.pieces(bytes[...]) else {
                            return XCTFail("\(context): the safe cut at byte \(cut) changes the pattern's pieces")
                        }
                    }
                    if SafeCuts.isSafe(buffer, at: cut, specials: tokenizer.specials) {
                        var sides: [Int32] = []
                        encoder.encode(UnsafeBufferPointer(rebasing: buffer[..<cut]), into: &sides)
                        encoder.encode(UnsafeBufferPointer(rebasing: buffer[cut...]), into: &sides)
                        guard sides == whole else { return XCTFail("\(context): the safe cut at byte \(cut) changes the ids") }
                    }
                    // A stream whose blocks end at any byte, even inside a scalar.
                    let streamed = try stream(bytes, blocks: [0..<cut, cut..<bytes.count])
                    guard streamed == whole else {
                        return XCTFail("\(context): streamed with a block end at byte \(cut): \(streamed), whole \(whole)")
                    }
                }
            }
            // One byte per block: every block end at once.
            let byteByByte = try stream(bytes, blocks: bytes.indices.map { $0..<($0 + 1) })
            guard byteByByte == whole else { return XCTFail("\(context): streamed byte by byte: \(byteByByte), whole \(whole)") }
        }
        XCTAssertGreaterThan(safeCutsSeen, 1000, "the random strings exercise safe cuts")
    }

    func testParallelEncodingAndCountingEqualTheWholeText() {
        let tokenizer = Self.tokenizer
        var generator = SeededGenerator(seed: 9)
        var text = ""
        for _ in 0..<20_000 { text += HardCaseText.random(&generator) }
        let bytes = Array(text.utf8)
        let serial = tokenizer.encode(text)
        bytes.withUnsafeBufferPointer { buffer in
            for threads in [2, 3] {
                for minimumChunk in [16, 1000] {
                    let chunks = SafeCuts.chunks(buffer, count: threads * 4, minimumChunk: minimumChunk, specials: tokenizer.specials)
                    XCTAssertGreaterThan(chunks.count, threads, "the text is cut")
                    var parallel: [Int32] = []
                    ParallelEncoder(tokenizer: tokenizer, threads: threads, minimumChunk: minimumChunk).encode(buffer, into: &parallel)
                    XCTAssertEqual(parallel, serial, "\(threads) threads, chunks of at least \(minimumChunk) bytes")
                }
            }
            // Training counts: pieces of each text segment, as the pattern finds them in the whole text.
            var expected: [[UInt8]: UInt64] = [:]
            for segment in HardCaseText.segments(bytes) {
                guard let range = segment.text else { continue }
                for piece in reference.pieces(bytes[range]) { expected[piece, default: 0] += 1 }
            }
            let counts = PieceCounter.count(buffer, specials: tokenizer.specials, threads: 2, minimumChunk: 64, progress: nil)
            var actual: [[UInt8]: UInt64] = [:]
            counts.forEach { key, count in actual[Array(key)] = count }
            XCTAssertEqual(actual.count, expected.count, "distinct pieces counted")
            let differing = expected.filter { actual[$0.key] != $0.value }.prefix(5).map { "\(show($0.key)): \(actual[$0.key] ?? 0) vs \($0.value)" }
            XCTAssertEqual(differing, [], "piece counts differ from the whole-text pattern")
        }
    }

    /// The regressions that motivated these tests, with the trained tokenizer.
    func testWhitespaceRunsAtTheEndAndBeforeSymbols() throws {
        for (text, pieces) in [("a \n\nb", ["a", " \n", "\n", "b"]), ("\n\n*", ["\n", "\n", "*"]), ("\t\tx", ["\t", "\t", "x"]),
                               ("x'l", ["x", "'", "l"]), ("x'll", ["x", "'ll"])] {
            XCTAssertEqual(PreTokenizer.pieces(text).map { String(decoding: $0, as: UTF8.self) }, pieces, text.debugDescription)
            let bytes = Array(text.utf8)
            for cut in 1..<bytes.count {
                XCTAssertEqual(try stream(bytes, blocks: [0..<cut, cut..<bytes.count]), Self.tokenizer.encode(text),
                               "\(text.debugDescription) streamed with a block end at byte \(cut)")
            }
        }
    }

    /// Streams `bytes` through ``StreamingEncoder`` in the given blocks.
    func stream(_ bytes: [UInt8], blocks: [Range<Int>]) throws -> [Int32] {
        var remaining = blocks[...]
        var ids: [Int32] = []
        try StreamingEncoder(tokenizer: Self.tokenizer).encode(reading: {
            guard let next = remaining.popFirst() else { return Data() }
            return Data(bytes[next])
        }, source: "test", emit: { ids += $0 })
        return ids
    }

    func show(_ piece: [UInt8]) -> String { String(decoding: piece, as: UTF8.self).debugDescription }
}
