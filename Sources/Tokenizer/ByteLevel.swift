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

    /// stand-in scalar value → byte, −1 outside the alphabet (stand-ins are all below U+0144).
    static let byteForScalarValue: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    /// Bytes → their stand-in text, e.g. `[0x20, 0x74]` → `"Ġt"`.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(scalarForByte[Int(byte)]) }
        return String(scalars)
    }

    /// Stand-in text → bytes, or nil when a character is outside the alphabet.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var utf8 = Array(text.utf8)
        return utf8.withUnsafeMutableBufferPointer { decode(utf8: UnsafeBufferPointer($0)) }
    }

    /// Stand-in text as UTF-8 bytes → bytes, or nil when a scalar is outside the alphabet
    /// (stand-ins are one or two UTF-8 bytes long).
    static func decode(utf8 text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            let lead = text[index]
            var value = UInt32(lead)
            if lead >= 0x80 {
                guard lead & 0xE0 == 0xC0, index + 1 < text.count else { return nil }
                value = UInt32(lead & 0x1F) << 6 | UInt32(text[index + 1] & 0x3F)
                index += 1
            }
            index += 1
            guard value < byteForScalarValue.count, byteForScalarValue[Int(value)] >= 0 else { return nil }
            bytes.append(UInt8(byteForScalarValue[Int(value)]))
        }
        return bytes
    }
}
