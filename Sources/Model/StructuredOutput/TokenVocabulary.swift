import Foundation
import Tokenizer

/// A tokenizer's pieces as byte strings, sorted, for walking them with a grammar as one walks a
/// trie: tokens that share a prefix are neighbours, so the prefix is read once, and once a prefix
/// is refused every token that starts with it is skipped without reading it (`Walk.lcp` keeps how far
/// each token agrees with the one before). Pieces made only of plain string characters are also
/// kept apart: inside a string without rules (and not inside an escape or a character) they are
/// all allowed, and only the others are walked.
///
/// Built once per tokenizer and kept (``shared(for:excluded:)``): Gemma 3's 262,144 pieces take a few
/// tenths of a second, once per process.
public final class TokenVocabulary: @unchecked Sendable {
    /// The walk's view of the pieces in byte order (stop and empty pieces left out): all of
    /// them, and those that are not plain (`plain`).
    let walkAll: Walk, walkSpecial: Walk
    /// Each id's position in `walkAll` (-1: left out).
    let position: [Int]

    /// Pieces in byte order, flattened: all their bytes end to end, where each starts, and how far
    /// each agrees with the one before (no array per piece to retain in the hot loop).
    struct Walk: Sendable {
        let ids: [Int32]
        let bytes: [UInt8]
        /// Piece i is bytes[starts[i]..<starts[i + 1]].
        let starts: [Int]
        let lcp: [Int]

        /// `entries` in byte order.
        init(_ entries: [(bytes: [UInt8], id: Int32)]) {
            ids = entries.map(\.id)
            bytes = entries.flatMap(\.bytes)
            var starts = [0], lcp = [Int](repeating: 0, count: entries.count)
            starts.reserveCapacity(entries.count + 1)
            for (index, entry) in entries.enumerated() {
                starts.append(starts.last! + entry.bytes.count)
                if index > 0 { lcp[index] = zip(entries[index - 1].bytes, entry.bytes).prefix { $0 == $1 }.count }
            }
            (self.starts, self.lcp) = (starts, lcp)
        }

        /// The bytes of the piece at `index`.
        func piece(_ index: Int) -> ArraySlice<UInt8> { bytes[starts[index]..<starts[index + 1]] }
    }
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
        var position = [Int](repeating: -1, count: vocabularySize)
        for (index, entry) in entries.enumerated() { position[Int(entry.id)] = index }
        self.position = position
        // Whole UTF-8 characters only: a piece holding part of one must be read with what precedes it.
        let isPlain = { (bytes: [UInt8]) in
            bytes.allSatisfy { $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") } && String(validating: bytes, as: UTF8.self) != nil
        }
        let plainEntries = entries.filter { isPlain($0.bytes) }
            .map { (id: $0.id, length: String(decoding: $0.bytes, as: UTF8.self).unicodeScalars.count) }
            .sorted { ($0.length, $0.id) < ($1.length, $1.id) }
        plain = plainEntries.map(\.id)
        plainLength = plainEntries.map(\.length)
        walkAll = Walk(entries)
        walkSpecial = Walk(entries.filter { !isPlain($0.bytes) })
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
