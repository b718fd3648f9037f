/// GPT-2's byte-level alphabet: every byte has a printable stand-in character, so byte strings
/// can be stored as text in `vocab.json` and `merges.txt` (the space byte is `Ġ`, U+0120).
///
/// The order matters too: GPT-2 (and the CS336 reference vocabulary) number the 256 single
/// bytes in this alphabet's order, printable bytes first, not in byte order.
public enum ByteLevel {
    /// The bytes in GPT-2 order: `!`…`~`, `¡`…`¬`, `®`…`ÿ`, then the other 68 in increasing order.
    public static let byteOrder: [UInt8] = {
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        let others = (0...255).filter { !printable.contains($0) }
        return (printable + others).map { UInt8($0) }
    }()

    /// byte → its stand-in scalar.
    public static let scalarForByte: [Unicode.Scalar] = {
        let printable = Set(Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF))
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0...255 {
            if printable.contains(byte) {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// stand-in scalar → byte.
    public static let byteForScalar: [Unicode.Scalar: UInt8] = {
        Dictionary(uniqueKeysWithValues: scalarForByte.enumerated().map { ($1, UInt8($0)) })
    }()

    /// Bytes → their stand-in text, e.g. `[0x20, 0x74]` → `"Ġt"`.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(scalarForByte[Int(byte)]) }
        return String(scalars)
    }

    /// Stand-in text → bytes, or nil when a character is outside the alphabet.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            guard let byte = byteForScalar[scalar] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
