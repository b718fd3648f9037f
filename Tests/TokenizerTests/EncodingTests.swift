import Foundation
import Kernels
import Synchronization
@testable import Tokenizer
import XCTest

final class EncodingTests: XCTestCase {
    let tokenizer = TokenizerFactory.trained

    func testRoundTrips() throws {
        for text in ["", "a", "🙃", "🙃🙃🙃 emoji", "e\u{301}\u{301} combining marks", "中文字符 日本語のテキスト 한국어",
                     "<|endoftext|>", "a<|endoftext|>b", "tabs\tand\r\nnewlines", "\u{0}\u{7f}\u{80}\u{ffff}\u{10ffff}",
                     TokenizerFactory.sampleText] {
            XCTAssertEqual(try tokenizer.decode(tokenizer.encode(text)), text, "round trip of \(text.prefix(40).debugDescription)")
        }
    }

    func testSpecialTokensMatchLongestFirstAndAreNeverSplit() throws {
        let single = tokenizer.specialTokenID("<|endoftext|>")!, double = tokenizer.specialTokenID("<|endoftext|><|endoftext|>")!
        XCTAssertEqual([single, double], [0, 1], "special tokens take the first ids, in the order given")
        let ids = tokenizer.encode("a<|endoftext|><|endoftext|>b<|endoftext|><|endoftext|><|endoftext|>")
        XCTAssertEqual(ids.filter { $0 < 2 }, [double, double, single])
        XCTAssertEqual(tokenizer.encode("<|endoftext|"), tokenizer.encode("<|endoftext") + tokenizer.encode("|"), "a partial special token is text")
    }

    func testScanAndHeapMergingAgree() throws {
        // Long pieces take the heap path; cut them short and the scan path must agree.
        var generator = SeededGenerator(seed: 3)
        let alphabet = Array("thecatsdogmn".utf8)
        for length in [2, 3, 17, 129, 300, 1000] {
            let piece = (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            var heap: [Int32] = [], scan: [Int32] = []
            piece.withUnsafeBufferPointer { bytes in
                HeapMerge.merge(bytes, tokenizer: tokenizer, into: &heap)
                let encoder = tokenizer.makeEncoder()
                encoder.mergeByScanForTesting(bytes, into: &scan)
            }
            XCTAssertEqual(heap, scan, "piece of \(length) bytes")
            XCTAssertEqual(try tokenizer.decodeBytes(heap), piece)
        }
    }

    func testParallelEncodingEqualsSerial() {
        let text = String(repeating: TokenizerFactory.sampleText, count: 8)
        XCTAssertEqual(tokenizer.encode(text, threads: 2), tokenizer.encode(text))
        XCTAssertEqual(tokenizer.encode(text, threads: 3), tokenizer.encode(text))
    }

    func testOneTokenizerEncodesFromManyThreadsAtOnce() {
        let texts = (0..<16).map { String(repeating: TokenizerFactory.sampleText, count: 1 + $0 % 3) + " \($0)" }
        let tokenizer = self.tokenizer
        let expected = texts.map { tokenizer.makeEncoder().encodeForTesting($0) }
        let tasks = texts.count * 4
        let results = Mutex([[Int32]](repeating: [], count: tasks))
        DispatchQueue.concurrentPerform(iterations: tasks) { index in
            let ids = tokenizer.encode(texts[index % texts.count])
            results.withLock { $0[index] = ids }
        }
        let all = results.withLock { $0 }
        for index in 0..<tasks {
            XCTAssertEqual(all[index], expected[index % texts.count], "text \(index % texts.count) on task \(index)")
        }
    }

    func testStreamingEqualsWholeFile() throws {
        let text = String(repeating: TokenizerFactory.sampleText + "  trailing \u{3000}\u{3000}space<|endoftext|><|endof", count: 3) + "text|>end"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stream-\(UUID().uuidString).txt").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let whole = tokenizer.encode(text)
        for blockSize in [1024, 1500, 4096, 1 << 20] {
            for threads in [1, 2] {
                var streamed: [Int32] = []
                try StreamingEncoder(tokenizer: tokenizer, blockSize: blockSize, threads: threads).encode(file: path) { streamed += $0 }
                XCTAssertEqual(streamed, whole, "block size \(blockSize), \(threads) threads")
            }
        }
    }

    func testPathologicalInputsEncodeAndRoundTrip() throws {
        // One megabyte that is a single piece: the merge loop must be near-linear to finish.
        for text in [String(repeating: "a", count: 1 << 20), String(repeating: " ", count: 1 << 20),
                     String(repeating: "🙃", count: 1 << 18)] {
            let start = Date()
            let ids = tokenizer.encode(text)
            XCTAssertEqual(try tokenizer.decode(ids), text)
            print("encoded 1 MB of \(text.unicodeScalars.first!.debugDescription) into \(ids.count) ids in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        }
    }

    func testIncrementalDecodingNeverSplitsACharacter() throws {
        let text = "🙃 naïve 日本語 e\u{301}"
        // Byte-level ids so that multi-byte characters arrive one byte at a time.
        let ids = Array(text.utf8).map { tokenizer.byteIDs[Int($0)] }
        var decoder = IncrementalDecoder(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in ids { pieces.append(try decoder.append(id)) }
        pieces.append(decoder.finish())
        XCTAssertEqual(pieces.joined(), text)
        for piece in pieces { XCTAssertFalse(piece.contains("\u{FFFD}"), "no replacement characters mid-stream") }
        // An unfinished sequence at the end becomes U+FFFD.
        var truncated = IncrementalDecoder(tokenizer: tokenizer)
        XCTAssertEqual(try truncated.append(tokenizer.byteIDs[0xF0]), "")
        XCTAssertEqual(truncated.finish(), "\u{FFFD}")
    }

    func testInvalidUTF8DecodesToReplacementCharacters() throws {
        XCTAssertEqual(try tokenizer.decode([tokenizer.byteIDs[0xFF], tokenizer.byteIDs[Int(UInt8(ascii: "a"))]]), "\u{FFFD}a")
    }

    func testOutOfRangeIDsAreReported() {
        XCTAssertThrowsError(try tokenizer.decode([1, 5000])) { XCTAssertTrue("\($0)".contains("id 5000 at index 1")) }
        XCTAssertThrowsError(try tokenizer.decode([-3])) { XCTAssertTrue("\($0)".contains("id -3")) }
    }
}
