import Foundation
import TensorIO

/// The tokenizer of llama2.c (`tokenizer.bin`): a SentencePiece-style vocabulary of pieces with
/// scores, encoded as `run.c` encodes and decoded as it decodes.
///
/// File format (little-endian): int32 longest piece length, then per piece a float32 score, an
/// int32 byte length and the piece's bytes. The file does not store the piece count; it is
/// read to the end. Ids 0, 1 and 2 are `<unk>`, `<s>` (BOS) and `</s>` (EOS); ids 3…258 are
/// the byte pieces `<0x00>`…`<0xFF>`.
///
/// Encoding: BOS; the piece " " when the text is not empty (SentencePiece's dummy prefix); each
/// UTF-8 character as its own piece, or as byte pieces (id = byte + 3) when the vocabulary lacks
/// it; then, over and over, the adjacent pair whose concatenated text is a piece with the
/// highest score is merged (the leftmost pair on a tie), until no pair is a piece. A heap makes
/// that O(n log n) instead of `run.c`'s rescan per merge, with the same result.
public final class SentencePieceTokenizer: Sendable {
    public static let unknownID: Int32 = 0, bosID: Int32 = 1, eosID: Int32 = 2
    /// Byte `b` without a piece of its own is encoded as id `b + byteOffset`.
    public static let byteOffset = 3

    /// Each piece's bytes as written in the file (byte pieces are the text `<0xXX>`).
    public let pieces: [[UInt8]]
    public let scores: [Float]
    /// The header's longest piece length (kept to write the file back unchanged).
    public let maxPieceLength: Int
    private let ids: [[UInt8]: Int32]
    /// What each id decodes to: the piece, with `<0xXX>` turned into its byte.
    private let decoded: [[UInt8]]

    public init(pieces: [[UInt8]], scores: [Float], maxPieceLength: Int? = nil) throws {
        guard pieces.count == scores.count else { throw TokenizerError("SentencePieceTokenizer: \(pieces.count) pieces but \(scores.count) scores") }
        guard pieces.count > Self.byteOffset + 255 else {
            throw TokenizerError("SentencePieceTokenizer: \(pieces.count) pieces; llama2.c's layout needs <unk>, <s>, </s> and 256 byte pieces at least")
        }
        try Self.requireLayout(pieces)
        self.pieces = pieces
        self.scores = scores
        self.maxPieceLength = maxPieceLength ?? pieces.map(\.count).max() ?? 0
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(pieces.count)
        for (id, piece) in pieces.enumerated() { ids[piece] = Int32(id) }
        self.ids = ids
        decoded = pieces.map { Self.byteValue(of: $0).map { [$0] } ?? $0 }
    }

    /// Stops unless `pieces` hold what run.c's encoder uses by id: BOS `<s>` at 1 and EOS `</s>`
    /// at 2 (llama2.c's export writes them with newlines around), the byte pieces `<0x00>`…`<0xFF>`
    /// at 3…258 (a byte without a piece of its own is encoded as id byte + 3), and no piece twice
    /// (run.c's binary search would find either). The message names what is missing.
    static func requireLayout(_ pieces: [[UInt8]]) throws {
        for (id, name) in [(Int(bosID), "<s>"), (Int(eosID), "</s>")] {
            let text = String(decoding: pieces[id], as: UTF8.self)
            guard text.trimmingCharacters(in: .whitespacesAndNewlines) == name else {
                throw TokenizerError("piece \(id) is '\(text)', not \(name): llama2.c's layout puts \(id == Int(bosID) ? "BOS" : "EOS") there")
            }
        }
        let missing = (0..<256).filter { pieces[byteOffset + $0] != Array(VocabularyChecks.bytePiece($0).utf8) }
        if let first = missing.first {
            throw TokenizerError("the byte pieces are missing for \(VocabularyChecks.describe(bytes: missing)): id \(byteOffset + first) is "
                                 + "'\(String(decoding: pieces[byteOffset + first], as: UTF8.self))', not \(VocabularyChecks.bytePiece(first)) "
                                 + "(llama2.c's layout has <0x00>…<0xFF> at ids 3…258, where bytes without a piece are encoded)")
        }
        try VocabularyChecks.requireDistinct(pieces)
    }

    /// Reads a `tokenizer.bin`; errors name the file, the piece and the byte offset.
    public convenience init(path: String) throws {
        let data: Data
        do { data = try InputFile.read(path) } catch { throw TokenizerError("\(error)") }
        var pieces: [[UInt8]] = [], scores: [Float] = []
        let maxLength: Int = try data.withUnsafeBytes { bytes in
            func int32(_ offset: Int) -> Int32 { Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)) }
            guard bytes.count >= 4 else { throw TokenizerError("\(path): \(bytes.count) bytes, too short for a llama2.c tokenizer") }
            let maxLength = Int(int32(0))
            guard maxLength > 0 && maxLength <= 1 << 16 else {
                throw TokenizerError("\(path): longest piece length \(maxLength) in the header; not a llama2.c tokenizer.bin")
            }
            var offset = 4
            while offset < bytes.count {
                guard offset + 8 <= bytes.count else {
                    throw TokenizerError("\(path): piece \(pieces.count) at byte \(offset): the file ends inside its score and length")
                }
                let score = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let length = Int(int32(offset + 4))
                guard length >= 0 && length <= maxLength && offset + 8 + length <= bytes.count else {
                    throw TokenizerError("\(path): piece \(pieces.count) at byte \(offset): length \(length) is negative, above the header's \(maxLength), or past the end of the file")
                }
                guard score.isFinite else { throw TokenizerError("\(path): piece \(pieces.count) at byte \(offset): score is not finite") }
                pieces.append(Array(bytes[(offset + 8)..<(offset + 8 + length)]))
                scores.append(score)
                offset += 8 + length
            }
            return maxLength
        }
        do { try self.init(pieces: pieces, scores: scores, maxPieceLength: maxLength) } catch let error as TokenizerError {
            throw TokenizerError("\(path): \(error.message)")
        }
    }

    public var vocabularySize: Int { pieces.count }

    /// The file's bytes: header, then score, length and bytes of every piece.
    public func fileData() -> Data {
        var data = Data()
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        append(Int32(maxPieceLength))
        for (piece, score) in zip(pieces, scores) {
            append(score.bitPattern)
            append(Int32(piece.count))
            data.append(contentsOf: piece)
        }
        return data
    }

    /// `<0xXX>` → XX.
    static func byteValue(of piece: [UInt8]) -> UInt8? {
        guard piece.count == 6, piece[0] == UInt8(ascii: "<"), piece[1] == UInt8(ascii: "0"), piece[2] == UInt8(ascii: "x"),
              piece[5] == UInt8(ascii: ">"), let high = hexDigit(piece[3]), let low = hexDigit(piece[4]) else { return nil }
        return high << 4 | low
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// The ids `run.c`'s `encode(text, bos, eos)` gives.
    public func encode(_ text: String, bos: Bool = true, eos: Bool = false) -> [Int32] {
        var tokens: [Int32] = bos ? [Self.bosID] : []
        let bytes = Array(text.utf8)
        if !bytes.isEmpty, let space = ids[[UInt8(ascii: " ")]] { tokens.append(space) }
        // One character at a time, as run.c reads it: a lead byte and at most three
        // continuation bytes.
        var start = 0
        while start < bytes.count {
            var end = start + 1
            while end < bytes.count && bytes[end] & 0xC0 == 0x80 && end - start < 4 { end += 1 }
            let character = Array(bytes[start..<end])
            if let id = ids[character] {
                tokens.append(id)
            } else {
                tokens += character.map { Int32($0) + Int32(Self.byteOffset) }
            }
            start = end
        }
        mergeByScore(&tokens)
        if eos { tokens.append(Self.eosID) }
        return tokens
    }

    /// Repeatedly merges the adjacent pair whose concatenation is the highest-scoring piece
    /// (leftmost on a tie), with a heap of candidate pairs over a linked list of tokens.
    private func mergeByScore(_ tokens: inout [Int32]) {
        let n = tokens.count
        guard n > 1 else { return }
        var next = Array(1...n), previous = Array(-1..<(n - 1))  // next[n - 1] == n: the end
        var alive = [Bool](repeating: true, count: n)
        var heap = PairHeap()
        func consider(_ left: Int) {
            // `left` is -1 when the merged token is now the first: it has no left neighbour.
            guard left >= 0, next[left] < n else { return }
            let right = next[left]
            // run.c starts its search for the best score at -1e10: pieces scored at or below
            // it never merge.
            if let id = ids[pieces[Int(tokens[left])] + pieces[Int(tokens[right])]], scores[Int(id)] > -1e10 {
                heap.push(.init(score: scores[Int(id)], left: left, leftID: tokens[left], rightID: tokens[right], result: id))
            }
        }
        for i in 0..<(n - 1) { consider(i) }
        while let best = heap.pop() {
            let right = next[best.left]
            // Stale when either token has changed since the pair was pushed.
            guard alive[best.left], right < n, tokens[best.left] == best.leftID, tokens[right] == best.rightID else { continue }
            tokens[best.left] = best.result
            alive[right] = false
            next[best.left] = next[right]
            if next[right] < n { previous[next[right]] = best.left }
            consider(previous[best.left])
            consider(best.left)
        }
        var result: [Int32] = []
        result.reserveCapacity(n)
        var i = 0
        while i < n {
            result.append(tokens[i])
            i = next[i]
        }
        tokens = result
    }

    /// The bytes `run.c`'s `decode(previous, id)` prints: the piece, a byte for `<0xXX>`, and
    /// no leading space right after BOS.
    public func pieceBytes(_ id: Int32, after previous: Int32?) throws -> [UInt8] {
        guard id >= 0 && Int(id) < pieces.count else {
            throw TokenizerError("token id \(id) is outside the vocabulary (0..<\(pieces.count))")
        }
        let bytes = decoded[Int(id)]
        if previous == Self.bosID, bytes.first == UInt8(ascii: " "), Self.byteValue(of: pieces[Int(id)]) == nil { return Array(bytes.dropFirst()) }
        return bytes
    }

    /// The text of `ids` (BOS and EOS print nothing; the dummy space after BOS is dropped).
    public func decode<ID: BinaryInteger>(_ ids: some Sequence<ID>) throws -> String {
        var bytes: [UInt8] = [], previous: Int32?
        for raw in ids {
            guard let id = Int32(exactly: raw) else { throw TokenizerError("token id \(raw) is outside the vocabulary (0..<\(pieces.count))") }
            if id != Self.bosID && id != Self.eosID { bytes += try pieceBytes(id, after: previous) }
            previous = id
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Candidate merges, best first: highest score, then leftmost position.
struct PairHeap {
    struct Pair {
        let score: Float
        let left: Int
        let leftID: Int32, rightID: Int32, result: Int32

        func isBetter(than other: Pair) -> Bool { score != other.score ? score > other.score : left < other.left }
    }

    private var items: [Pair] = []

    mutating func push(_ pair: Pair) {
        items.append(pair)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].isBetter(than: items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Pair? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var best = parent
                if left < items.count && items[left].isBetter(than: items[best]) { best = left }
                if right < items.count && items[right].isBetter(than: items[best]) { best = right }
                if best == parent { break }
                items.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}
