import Foundation

/// Fast non-cryptographic hashing for the tokenizer's tables (the standard library's `Hasher`
/// is SipHash, several times slower for the millions of short keys tokenization looks up).
enum FastHash {
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A hash of a byte string, eight bytes at a time.
    static func bytes(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0x27D4_EB2F_1656_67C5 ^ UInt64(key.count)
        guard let base = key.baseAddress else { return mix(hash) }
        let raw = UnsafeRawPointer(base)
        var index = 0
        while index + 8 <= key.count {
            hash = mix(hash ^ raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            index += 8
        }
        if index < key.count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while index < key.count {
                tail |= UInt64(key[index]) << shift
                shift += 8
                index += 1
            }
            hash = mix(hash ^ tail)
        }
        return hash
    }
}

/// An open-addressing map from a pair of token ids to a value, keyed `a << 32 | b`.
struct PairMap<Value> {
    private var keys: [UInt64]
    private var values: [Value?]
    private var mask: Int
    private(set) var count = 0
    private static var empty: UInt64 { UInt64.max }

    init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [Value?](repeating: nil, count: size)
        mask = size - 1
    }

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    @inline(__always)
    private func slot(for key: UInt64) -> Int {
        var index = Int(truncatingIfNeeded: FastHash.mix(key)) & mask
        while keys[index] != key && keys[index] != Self.empty { index = (index + 1) & mask }
        return index
    }

    @inline(__always)
    func value(_ key: UInt64) -> Value? {
        values[slot(for: key)]
    }

    subscript(key: UInt64) -> Value? {
        get { value(key) }
        set {
            guard let newValue else { preconditionFailure("PairMap does not support removal") }
            var index = slot(for: key)
            if keys[index] == Self.empty {
                if (count + 1) * 2 > keys.count {
                    grow()
                    index = slot(for: key)
                }
                keys[index] = key
                count += 1
            }
            values[index] = newValue
        }
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = [UInt64](repeating: Self.empty, count: oldKeys.count * 2)
        values = [Value?](repeating: nil, count: oldKeys.count * 2)
        mask = keys.count - 1
        count = 0
        for index in oldKeys.indices where oldKeys[index] != Self.empty { self[oldKeys[index]] = oldValues[index] }
    }
}

/// An open-addressing map from byte strings to a value, the keys copied into one arena.
struct ByteStringMap<Value> {
    fileprivate struct Entry {
        var hash: UInt64
        var start: Int
        var length: Int
        var value: Value
    }
    private var slots: [Int32]
    private var entries: [Entry] = []
    private(set) var arena: [UInt8] = []
    private var mask: Int

    var count: Int { entries.count }

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    @inline(__always)
    private func find(_ key: UnsafeBufferPointer<UInt8>, hash: UInt64) -> (slot: Int, entry: Int32) {
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = slots[index]
            if entry < 0 { return (index, -1) }
            let candidate = entries[Int(entry)]
            if candidate.hash == hash && candidate.length == key.count && keyEquals(candidate.start, key) {
                return (index, entry)
            }
            index = (index + 1) & mask
        }
    }

    @inline(__always)
    private func keyEquals(_ start: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        arena.withUnsafeBufferPointer { stored in
            guard key.count > 0 else { return true }
            return memcmp(stored.baseAddress! + start, key.baseAddress!, key.count) == 0
        }
    }

    func value(for key: UnsafeBufferPointer<UInt8>) -> Value? {
        let found = find(key, hash: FastHash.bytes(key))
        return found.entry < 0 ? nil : entries[Int(found.entry)].value
    }

    func value(for key: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Value? {
        let found = find(key, hash: hash)
        return found.entry < 0 ? nil : entries[Int(found.entry)].value
    }

    /// Inserts or replaces the value for `key`.
    mutating func set(_ value: Value, for key: UnsafeBufferPointer<UInt8>, hash: UInt64? = nil) {
        let hash = hash ?? FastHash.bytes(key)
        let found = find(key, hash: hash)
        if found.entry >= 0 {
            entries[Int(found.entry)].value = value
            return
        }
        entries.append(Entry(hash: hash, start: arena.count, length: key.count, value: value))
        arena.append(contentsOf: key)
        slots[found.slot] = Int32(entries.count - 1)
        if entries.count * 2 > slots.count { rehash(size: slots.count * 2) }
    }

    /// Applies `update` to the value for `key`, inserting `initial` first when absent.
    mutating func update(_ key: UnsafeBufferPointer<UInt8>, initial: Value, _ update: (inout Value) -> Void) {
        let hash = FastHash.bytes(key)
        let found = find(key, hash: hash)
        if found.entry >= 0 {
            update(&entries[Int(found.entry)].value)
            return
        }
        var value = initial
        update(&value)
        entries.append(Entry(hash: hash, start: arena.count, length: key.count, value: value))
        arena.append(contentsOf: key)
        slots[found.slot] = Int32(entries.count - 1)
        if entries.count * 2 > slots.count { rehash(size: slots.count * 2) }
    }

    /// Every key and value, in insertion order.
    func forEach(_ body: (UnsafeBufferPointer<UInt8>, Value) -> Void) {
        arena.withUnsafeBufferPointer { stored in
            for entry in entries {
                body(UnsafeBufferPointer(rebasing: stored[entry.start..<(entry.start + entry.length)]), entry.value)
            }
        }
    }

    mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        arena.removeAll(keepingCapacity: true)
        for index in slots.indices { slots[index] = -1 }
    }

    private mutating func rehash(size: Int) {
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        for (position, entry) in entries.enumerated() {
            var index = Int(truncatingIfNeeded: entry.hash) & mask
            while slots[index] >= 0 { index = (index + 1) & mask }
            slots[index] = Int32(position)
        }
    }
}

// Value types of arrays only: sendable exactly when their values are.
extension PairMap: Sendable where Value: Sendable {}
extension ByteStringMap: Sendable where Value: Sendable {}
extension ByteStringMap.Entry: Sendable where Value: Sendable {}
