import Foundation

/// A byte-level BPE tokenizer: special tokens split out first (longest first), then the
/// pre-tokenization of its ``TokenizerRules`` (GPT-2's pattern by default; SmolLM2's and Llama
/// 3's for their vocabularies), merges applied in rank order within each piece. With the
/// default rules encoding matches tiktoken with the same vocabulary and merges; decoding maps
/// ids back to bytes and then to text.
///
/// The tables are immutable and shared; encoding state (a cache of pieces already seen and
/// scratch space) lives in an ``Encoder``, one per thread. ``encode(_:parsingSpecialTokens:)`` borrows one from a
/// pool for the duration of the call, so any number of threads may encode at once.
public final class Tokenizer: Sendable {
    /// id → bytes.
    public let vocabulary: [[UInt8]]
    /// Merges in rank order: the two ids merged and the id of the result.
    public let merges: [(left: Int32, right: Int32, result: Int32)]
    /// Special tokens in the order given, with their ids.
    public let specialTokens: [(text: String, id: Int32)]
    /// Pre-tokenization, merging shortcut, prompt prefix and stop tokens.
    public let rules: TokenizerRules

    let byteIDs: [Int32]
    let mergeRanks: PairMap<(rank: Int32, result: Int32)>
    let idForBytes: ByteStringMap<Int32>
    let specials: SpecialTokenMatcher
    /// Encoders for ``encode(_:parsingSpecialTokens:)``, lent to one caller at a time.
    private let encoderPool = EncoderPool<Encoder>()

    /// Builds a tokenizer from its vocabulary (id → bytes; every single byte must be present),
    /// merges in rank order (each result must be in the vocabulary as the two halves joined),
    /// and special tokens (which must be in the vocabulary as their UTF-8 bytes).
    public init(vocabulary: [[UInt8]], merges: [(left: Int32, right: Int32)], specialTokens: [String],
                rules: TokenizerRules = TokenizerRules()) throws {
        self.vocabulary = vocabulary
        self.rules = rules
        for id in rules.promptPrefix + (rules.stopTokens ?? []) where !vocabulary.indices.contains(Int(id)) {
            throw TokenizerError("token id \(id) (prompt prefix or stop token) is outside the vocabulary of \(vocabulary.count)")
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        var idForBytes = ByteStringMap<Int32>(capacity: vocabulary.count)
        for (id, bytes) in vocabulary.enumerated() {
            if bytes.count == 1 && byteIDs[Int(bytes[0])] < 0 { byteIDs[Int(bytes[0])] = Int32(id) }
            bytes.withUnsafeBufferPointer { key in
                if idForBytes.value(for: key) == nil { idForBytes.set(Int32(id), for: key) }
            }
        }
        if let missing = byteIDs.firstIndex(of: -1) {
            guard rules.dropsBytesWithoutToken else { throw TokenizerError("vocabulary has no token for the single byte \(missing)") }
            for byte in byteIDs.indices where byteIDs[byte] == -1 { byteIDs[byte] = Self.byteWithoutToken }
        }
        var ranks = PairMap<(rank: Int32, result: Int32)>(capacity: merges.count)
        var resolved: [(left: Int32, right: Int32, result: Int32)] = []
        resolved.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            guard vocabulary.indices.contains(Int(merge.left)), vocabulary.indices.contains(Int(merge.right)) else {
                throw TokenizerError("merge \(rank + 1) refers to an id outside the vocabulary")
            }
            let joined = vocabulary[Int(merge.left)] + vocabulary[Int(merge.right)]
            guard let result = joined.withUnsafeBufferPointer({ idForBytes.value(for: $0) }) else {
                throw TokenizerError("merge \(rank + 1) (\(ByteLevel.encode(vocabulary[Int(merge.left)])) \(ByteLevel.encode(vocabulary[Int(merge.right)]))) produces a token missing from the vocabulary")
            }
            let key = PairMap<Int32>.key(merge.left, merge.right)
            if ranks.value(key) == nil { ranks[key] = (Int32(rank), result) }
            resolved.append((merge.left, merge.right, result))
        }
        var special: [(String, Int32)] = []
        for text in specialTokens {
            guard !text.isEmpty else { throw TokenizerError("special tokens must not be empty") }
            guard let id = Array(text.utf8).withUnsafeBufferPointer({ idForBytes.value(for: $0) }) else {
                throw TokenizerError("special token '\(text)' is not in the vocabulary")
            }
            special.append((text, id))
        }
        self.byteIDs = byteIDs
        self.merges = resolved
        mergeRanks = ranks
        self.idForBytes = idForBytes
        self.specialTokens = special.map { (text: $0.0, id: $0.1) }
        specials = SpecialTokenMatcher(special)
    }

    public var vocabularySize: Int { vocabulary.count }

    /// The symbol of a byte the vocabulary has no token for (``TokenizerRules/dropsBytesWithoutToken``):
    /// it merges with nothing and is left out of the ids.
    static let byteWithoutToken: Int32 = -2

    /// The id of a special token, e.g. `<|endoftext|>`.
    public func specialTokenID(_ text: String) -> Int32? {
        specialTokens.first { $0.text == text }?.id
    }

    /// A fresh encoder with its own cache, for one thread.
    public func makeEncoder() -> Encoder { Encoder(tokenizer: self) }

    /// Encodes text; special tokens in it become their ids, unless `parsingSpecialTokens` is
    /// false (then `<|im_start|>` is encoded as the characters it is written with).
    public func encode(_ text: String, parsingSpecialTokens: Bool = true) -> [Int32] {
        var ids: [Int32] = []
        var copy = text
        copy.withUTF8 { text in
            encoderPool.withEncoder(make: makeEncoder) { $0.encode(text, into: &ids, parsingSpecialTokens: parsingSpecialTokens) }
        }
        return ids
    }

    /// Encodes with `threads` encoders over chunks cut where pre-tokenization cannot cross
    /// (see ``SafeCuts``); the result equals ``encode(_:parsingSpecialTokens:)``.
    public func encode(_ text: String, threads: Int) -> [Int32] {
        var copy = text
        return copy.withUTF8 { encodeParallel($0, threads: threads) }
    }

    /// Parallel encoding of valid UTF-8 bytes (see ``ParallelEncoder``).
    public func encodeParallel(_ bytes: UnsafeBufferPointer<UInt8>, threads: Int) -> [Int32] {
        var ids: [Int32] = []
        ParallelEncoder(tokenizer: self, threads: threads).encode(bytes, into: &ids)
        return ids
    }

    /// The bytes of `ids` concatenated; throws naming the first id outside the vocabulary.
    public func decodeBytes<ID: BinaryInteger>(_ ids: some Sequence<ID>) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for (index, id) in ids.enumerated() {
            guard id >= 0 && id < vocabulary.count else {
                throw TokenizerError("id \(id) at index \(index) is outside the vocabulary (0..<\(vocabulary.count))")
            }
            bytes += vocabulary[Int(id)]
        }
        return bytes
    }

    /// Text of `ids`; byte sequences that are not valid UTF-8 become U+FFFD.
    public func decode<ID: BinaryInteger>(_ ids: some Sequence<ID>) throws -> String {
        String(decoding: try decodeBytes(ids), as: UTF8.self)
    }
}
