/// A vocabulary as a tokenizer file writes it: each id's key text (byte-level stand-ins, or the
/// literal text of a special token), the bytes it stands for, and the lookup from key text to id
/// that merge lists are resolved through. Shared by ``GPT2Files`` and ``HuggingFaceFile``.
struct VocabularyTable {
    /// id → the bytes of the token.
    private(set) var bytes: [[UInt8]]
    /// id → whether its key is literal text (not in the byte-level alphabet).
    private(set) var isLiteral: [Bool]
    private var idForKey: ByteStringMap<Int32>
    let file: String

    /// Entries are (key as UTF-8, id), ids exactly 0..<count in any order. A key is literal when
    /// `literal(id, key)` says so, or when it is not byte-level text and `literalWhenNotByteLevel`;
    /// otherwise a key outside the alphabet is an error naming it.
    init(entries: [(key: [UInt8], id: Int)], file: String, section: String,
         literal: (Int, [UInt8]) -> Bool, literalWhenNotByteLevel: Bool) throws {
        self.file = file
        let count = entries.count
        var table = [[UInt8]?](repeating: nil, count: count)
        var isLiteral = [Bool](repeating: false, count: count)
        var idForKey = ByteStringMap<Int32>(capacity: count * 2)
        for (key, id) in entries {
            let name = String(decoding: key, as: UTF8.self)
            guard id >= 0, id < count else {
                throw TokenizerError("\(file): \(section)key '\(name)' has id \(id), expected an integer in 0..<\(count)")
            }
            guard table[id] == nil else { throw TokenizerError("\(file): \(section)id \(id) is used twice (key '\(name)')") }
            let decoded = literal(id, key) ? nil : key.withUnsafeBufferPointer { ByteLevel.decode(utf8: $0) }
            if let decoded {
                table[id] = decoded
            } else {
                guard literal(id, key) || literalWhenNotByteLevel else {
                    throw TokenizerError("\(file): \(section)key '\(name)' is not byte-level text and not an added token")
                }
                table[id] = key
                isLiteral[id] = true
            }
            if let other = key.withUnsafeBufferPointer({ idForKey.value(for: $0) }) {
                throw TokenizerError("\(file): \(section)key '\(name)' is given to ids \(other) and \(id); every token must be distinct")
            }
            key.withUnsafeBufferPointer { idForKey.set(Int32(id), for: $0) }
        }
        bytes = table.map { $0! }
        self.isLiteral = isLiteral
        self.idForKey = idForKey
    }

    var count: Int { bytes.count }

    /// The id whose key is `key`.
    func id(_ key: UnsafeBufferPointer<UInt8>) -> Int32? { idForKey.value(for: key) }

    func id(_ key: ArraySlice<UInt8>) -> Int32? { key.withUnsafeBufferPointer { id($0) } }
}
