/// Finds the first byte where `bytes` stops being valid UTF-8 (overlong forms, surrogates and
/// values above U+10FFFF are invalid), for error messages that point at the problem.
public enum UTF8Validation {
    /// The offset of the first invalid or truncated sequence, or nil when all is valid.
    /// With `allowTruncatedEnd`, a sequence cut off by the end of `bytes` is not an error
    /// (a streaming reader completes it with the next block).
    public static func firstInvalidOffset(_ bytes: UnsafeBufferPointer<UInt8>, allowTruncatedEnd: Bool = false) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            // Eight ASCII bytes at a time.
            if i + 8 <= n, UnsafeRawPointer(bytes.baseAddress! + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
                continue
            }
            let lead = bytes[i]
            if lead < 0x80 { i += 1; continue }
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return i
            }
            if i + length > n {
                // Check what is there, then decide whether a cut-off end is acceptable.
                for k in 1..<(n - i) {
                    let byte = bytes[i + k]
                    if k == 1 ? (byte < low || byte > high) : (byte & 0xC0 != 0x80) { return i }
                }
                return allowTruncatedEnd ? nil : i
            }
            let second = bytes[i + 1]
            if second < low || second > high { return i }
            for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }

    /// Bytes at the end of `bytes` that start an incomplete (but so far valid) sequence.
    public static func incompleteSuffixLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let n = bytes.count
        var back = 1
        while back <= min(3, n) {
            let byte = bytes[n - back]
            if byte & 0xC0 != 0x80 {
                let needed = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                return needed > back ? back : 0
            }
            back += 1
        }
        return 0
    }
}
