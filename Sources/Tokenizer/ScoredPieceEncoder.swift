/// Encoding state of a ``ScoredPieceTokenizer`` for one thread: the escaped text, the symbols of
/// the merge loop, its queue of candidate pairs, and a cache from words already seen to their ids.
///
/// llama.cpp merges a whole stretch of text at once. A merge can only join two symbols whose
/// joined text is a piece, so where no piece can cover the boundary between two bytes, the two
/// sides merge independently and the stretch can be cut there without changing the result. Every
/// piece that starts after a `▁` begins with it, except the few in
/// ``ScoredPieceTokenizer/piecesAcrossWords``; so the text is cut before each `▁` that none of
/// those covers, into words that repeat and are cached.
public final class ScoredPieceEncoder {
    let tokenizer: ScoredPieceTokenizer
    private var escaped: [UInt8] = []
    private var symbols: [Symbol] = []
    private var queue = BigramQueue()
    private var cache = ByteStringMap<(start: Int32, count: Int32)>(capacity: 1 << 14)
    private var cachedIDs: [Int32] = []
    /// Words longer than this are not cached (they are rare and would crowd the cache).
    static let longestCachedWord = 64
    /// The cache is emptied when it holds this many ids, bounding memory on endless streams.
    static let cacheLimit = 1 << 22

    /// A run of the escaped text: its bytes, its neighbours in the word (-1: none) and, once it
    /// is the result of a merge, its id.
    private struct Symbol {
        var start: Int32
        var length: Int32
        var previous: Int32
        var next: Int32
        var id: Int32
    }

    init(tokenizer: ScoredPieceTokenizer) { self.tokenizer = tokenizer }

    /// Appends the ids of `text` (valid UTF-8) to `ids`; see ``ScoredPieceTokenizer``.
    public func encode(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32], parsingSpecialTokens: Bool = true) {
        // llama.cpp's `is_prev_special` starts true: the first stretch gets the dummy space too.
        var afterSpecial = true
        tokenizer.specials.split(text, parsingSpecialTokens: parsingSpecialTokens, text: { range in
            let stretch = UnsafeBufferPointer(rebasing: text[range])
            encodeStretch(stretch, spaceFirst: tokenizer.addsSpacePrefix && afterSpecial, into: &ids)
            afterSpecial = false
        }, special: { id in
            ids.append(id)
            afterSpecial = true
        })
    }

    /// Text between special pieces: spaces escaped, cut into words, each word merged.
    private func encodeStretch(_ text: UnsafeBufferPointer<UInt8>, spaceFirst: Bool, into ids: inout [Int32]) {
        escaped.removeAll(keepingCapacity: true)
        if spaceFirst { escaped += ScoredPieceTokenizer.escapedSpace }
        for byte in text {
            if byte == UInt8(ascii: " ") { escaped += ScoredPieceTokenizer.escapedSpace } else { escaped.append(byte) }
        }
        escaped.withUnsafeBufferPointer { buffer in
            var wordStart = 0
            var index = 1
            while index + 2 < buffer.count {
                let isEscapedSpace = buffer[index] == 0xE2 && buffer[index + 1] == 0x96 && buffer[index + 2] == 0x81
                if isEscapedSpace && mayCut(buffer, at: index) {
                    encodeWord(buffer, wordStart..<index, into: &ids)
                    wordStart = index
                }
                index += 1
            }
            if wordStart < buffer.count { encodeWord(buffer, wordStart..<buffer.count, into: &ids) }
        }
    }

    /// Whether no piece of ``ScoredPieceTokenizer/piecesAcrossWords`` occurs over the bytes
    /// `cut − 1` and `cut` (a `▁` starts at `cut`).
    private func mayCut(_ text: UnsafeBufferPointer<UInt8>, at cut: Int) -> Bool {
        guard let across = tokenizer.piecesAcrossWords else { return false }
        for piece in across {
            // Every placement of the piece that covers both sides of the cut.
            for offset in 1..<piece.count where cut - offset >= 0 && cut - offset + piece.count <= text.count {
                let start = cut - offset
                var equal = true
                for k in 0..<piece.count where text[start + k] != piece[k] {
                    equal = false
                    break
                }
                if equal { return false }
            }
        }
        return true
    }

    /// One word: from the cache, or merged.
    private func encodeWord(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into ids: inout [Int32]) {
        let word = UnsafeBufferPointer(rebasing: text[range])
        let cacheable = word.count <= Self.longestCachedWord
        let hash = FastHash.bytes(word)
        if cacheable, let hit = cache.value(for: word, hash: hash) {
            ids.append(contentsOf: cachedIDs[Int(hit.start)..<Int(hit.start + hit.count)])
            return
        }
        let first = ids.count
        merge(word, into: &ids)
        guard cacheable else { return }
        if cachedIDs.count > Self.cacheLimit {
            cache.removeAll()
            cachedIDs.removeAll(keepingCapacity: true)
        }
        cache.set((Int32(cachedIDs.count), Int32(ids.count - first)), for: word, hash: hash)
        cachedIDs.append(contentsOf: ids[first...])
    }

    /// llama.cpp's `llm_tokenizer_spm_session::tokenize` on one word.
    private func merge(_ word: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        let table = tokenizer.idForText
        // Characters by their lead byte, as llama.cpp's unicode_len_utf8 reads them.
        symbols.removeAll(keepingCapacity: true)
        var offset = 0
        while offset < word.count {
            let lead = word[offset]
            let length = min(lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4, word.count - offset)
            let index = Int32(symbols.count)
            symbols.append(Symbol(start: Int32(offset), length: Int32(length), previous: index - 1, next: index + 1,
                                  id: -1))
            offset += length
        }
        symbols[symbols.count - 1].next = -1
        queue.removeAll()
        symbols.withUnsafeMutableBufferPointer { symbols in
            // The pair (left, right) as a candidate when the joined text is a piece.
            func consider(_ left: Int32, _ right: Int32) {
                guard left >= 0, right >= 0 else { return }
                let start = Int(symbols[Int(left)].start)
                let size = Int(symbols[Int(left)].length + symbols[Int(right)].length)
                let joined = UnsafeBufferPointer(rebasing: word[start..<(start + size)])
                guard let id = table.value(for: joined) else { return }
                let score = tokenizer.scores[Int(id)]
                queue.push(BigramQueue.Bigram(score: score, left: left, right: right, size: Int32(size), id: id))
            }
            for right in 1..<symbols.count { consider(Int32(right - 1), Int32(right)) }
            while let best = queue.pop() {
                let left = Int(best.left), right = Int(best.right)
                // Stale when either side has merged since: llama.cpp's test on the lengths.
                let leftLength = symbols[left].length, rightLength = symbols[right].length
                guard leftLength > 0, rightLength > 0, leftLength + rightLength == best.size else { continue }
                symbols[left].length = best.size
                symbols[left].id = best.id
                symbols[right].length = 0
                symbols[left].next = symbols[right].next
                if symbols[right].next >= 0 { symbols[Int(symbols[right].next)].previous = best.left }
                consider(symbols[left].previous, best.left)
                consider(best.left, symbols[left].next)
            }
            // Each symbol its piece; a character with none, its bytes (llama.cpp's resegment
            // finds no merge to undo for a single character).
            var index = 0
            while index >= 0 {
                let symbol = symbols[index]
                if symbol.id >= 0 {
                    ids.append(symbol.id)
                } else {
                    let range = Int(symbol.start)..<Int(symbol.start + symbol.length)
                    let bytes = UnsafeBufferPointer(rebasing: word[range])
                    if let id = table.value(for: bytes) {
                        ids.append(id)
                    } else {
                        for byte in bytes where tokenizer.byteIDs[Int(byte)] >= 0 {
                            ids.append(tokenizer.byteIDs[Int(byte)])
                        }
                    }
                }
                index = Int(symbol.next)
            }
        }
    }
}
