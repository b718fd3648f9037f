import Foundation
import Tokenizer

/// A tokenizer's pieces as byte strings, sorted, for walking them with a grammar as one walks a
/// trie: tokens that share a prefix are neighbours, so the prefix is read once, and once a prefix
/// is refused every token that starts with it is skipped without reading it (``lcp`` says how far
/// each token agrees with the one before). Pieces made only of plain string characters are also
/// kept apart: inside a string without rules (and not inside an escape or a character) they are
/// all allowed, and only the others are walked.
///
/// Built once per tokenizer and kept (``shared(for:excluded:)``): Gemma 3's 262,144 pieces take a few
/// tenths of a second, once per process.
public final class TokenVocabulary: @unchecked Sendable {
    /// Token ids in byte order of their pieces (stop and empty pieces left out).
    let order: [Int32]
    /// Piece bytes, by position in `order`.
    let pieces: [[UInt8]]
    /// Bytes shared with the piece before (0 for the first).
    let lcp: [Int]
    /// The walk's view of `order`: all pieces' bytes end to end, where each starts, and the
    /// common prefixes (no array per piece to retain in the hot loop).
    let walkAll: Walk, walkSpecial: Walk

    /// Pieces in byte order, flattened.
    struct Walk: Sendable {
        let ids: [Int32]
        let bytes: [UInt8]
        /// Piece i is bytes[starts[i]..<starts[i + 1]].
        let starts: [Int]
        let lcp: [Int]

        init(ids: [Int32], pieces: [[UInt8]], lcp: [Int]) {
            self.ids = ids
            self.lcp = lcp
            bytes = pieces.flatMap { $0 }
            var starts = [0]
            starts.reserveCapacity(pieces.count + 1)
            for piece in pieces { starts.append(starts.last! + piece.count) }
            self.starts = starts
        }
    }
    /// Each id's position in `order` (-1: left out).
    let position: [Int]
    /// The same three for the pieces that are not plain string characters only.
    let specialOrder: [Int32], specialPieces: [[UInt8]], specialLCP: [Int]
    /// Ids of plain pieces (whole UTF-8 characters, none of them `"`, `\` or a control
    /// character), fewest characters first, and each one's character count.
    let plain: [Int32], plainLength: [Int]
    public let vocabularySize: Int
    /// The ids left out.
    let excluded: Set<Int32>

    /// `tokenizer`'s pieces, without `excluded` (its stop tokens: they end a document, they are not
    /// text in it).
    public init(tokenizer: any TextTokenizer, excluded: Set<Int32>) {
        vocabularySize = tokenizer.vocabularySize
        self.excluded = excluded
        var entries: [(bytes: [UInt8], id: Int32)] = []
        entries.reserveCapacity(vocabularySize)
        for id in 0..<Int32(vocabularySize) where !excluded.contains(id) {
            // After itself: the piece as it reads in the middle of a text (no dropped dummy space).
            guard let bytes = try? tokenizer.pieceBytes(id, after: id), !bytes.isEmpty else { continue }
            entries.append((bytes, id))
        }
        entries.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        func prefixes(_ list: [(bytes: [UInt8], id: Int32)]) -> [Int] {
            var result = [Int](repeating: 0, count: list.count)
            for index in list.indices.dropFirst() {
                result[index] = zip(list[index - 1].bytes, list[index].bytes).prefix { $0 == $1 }.count
            }
            return result
        }
        order = entries.map(\.id)
        var position = [Int](repeating: -1, count: vocabularySize)
        for (index, entry) in entries.enumerated() { position[Int(entry.id)] = index }
        self.position = position
        pieces = entries.map(\.bytes)
        lcp = prefixes(entries)
        // Whole UTF-8 characters only: a piece holding part of one must be read with what precedes it.
        let isPlain = { (bytes: [UInt8]) in
            bytes.allSatisfy { $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") } && String(validating: bytes, as: UTF8.self) != nil
        }
        let special = entries.filter { !isPlain($0.bytes) }
        specialOrder = special.map(\.id)
        specialPieces = special.map(\.bytes)
        specialLCP = prefixes(special)
        let plainEntries = entries.filter { isPlain($0.bytes) }
            .map { (id: $0.id, length: String(decoding: $0.bytes, as: UTF8.self).unicodeScalars.count) }
            .sorted { ($0.length, $0.id) < ($1.length, $1.id) }
        plain = plainEntries.map(\.id)
        plainLength = plainEntries.map(\.length)
        walkAll = Walk(ids: order, pieces: pieces, lcp: lcp)
        walkSpecial = Walk(ids: specialOrder, pieces: specialPieces, lcp: specialLCP)
    }

    private static let lock = NSLock()
    /// A cached vocabulary and the tokenizer it was built from, held weakly: an identifier can be
    /// reused by another object once the first is gone, and must not find its vocabulary.
    private struct Entry {
        weak var owner: AnyObject?
        let vocabulary: TokenVocabulary
    }
    nonisolated(unsafe) private static var cache: [ObjectIdentifier: Entry] = [:]

    /// The vocabulary of `tokenizer` without `excluded`, built on first use and kept for the
    /// tokenizer's lifetime in the process (one per tokenizer object and exclusion set).
    public static func shared(for tokenizer: any TextTokenizer, excluded: Set<Int32>) -> TokenVocabulary {
        let owner = tokenizer as AnyObject, key = ObjectIdentifier(owner)
        lock.lock()
        if let found = cache[key], found.owner === owner, found.vocabulary.excluded == excluded {
            lock.unlock()
            return found.vocabulary
        }
        lock.unlock()
        let built = TokenVocabulary(tokenizer: tokenizer, excluded: excluded)
        lock.lock()
        cache = cache.filter { $0.value.owner != nil }  // entries of tokenizers that are gone
        cache[key] = Entry(owner: owner, vocabulary: built)
        lock.unlock()
        return built
    }
}
