/// A forward-only JSON reader over UTF-8 bytes, for the files the engine reads (tokenizer files,
/// safetensors headers): a vocabulary of 50,000 entries or a header of 300,000 tensors is read
/// straight into byte strings and integers, without building Foundation dictionaries of `Any`
/// first (time at start-up, and memory many times the file's size).
///
/// Errors (``TensorFileError``) say what was expected and at which line and column, naming the file.
package struct JSONScanner {
    package let bytes: UnsafeBufferPointer<UInt8>
    package let file: String
    package private(set) var position = 0

    package init(_ bytes: UnsafeBufferPointer<UInt8>, file: String) {
        self.bytes = bytes
        self.file = file
    }

    /// An error at the current position.
    package func error(_ message: String) -> TensorFileError {
        var line = 1, column = 1
        for index in 0..<min(position, bytes.count) {
            if bytes[index] == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return TensorFileError(path: file, "line \(line), column \(column): \(message)")
    }

    package mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// The next non-whitespace byte, not consumed; nil at the end.
    package mutating func peek() -> UInt8? {
        skipWhitespace()
        return position < bytes.count ? bytes[position] : nil
    }

    package mutating func expect(_ byte: UInt8) throws {
        guard peek() == byte else { throw error("expected '\(Character(Unicode.Scalar(byte)))'") }
        position += 1
    }

    /// Consumes `byte` when it is next.
    package mutating func consume(_ byte: UInt8) -> Bool {
        guard peek() == byte else { return false }
        position += 1
        return true
    }

    /// Calls `body` once per member of an object, positioned at the member's value, with its key.
    package mutating func readObject(_ body: (inout JSONScanner, [UInt8]) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        if consume(UInt8(ascii: "}")) { return }
        repeat {
            let key = try readString()
            try expect(UInt8(ascii: ":"))
            try body(&self, key)
        } while consume(UInt8(ascii: ","))
        try expect(UInt8(ascii: "}"))
    }

    /// Calls `body` once per element of an array, positioned at the element, with its index.
    package mutating func readArray(_ body: (inout JSONScanner, Int) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        if consume(UInt8(ascii: "]")) { return }
        var index = 0
        repeat {
            try body(&self, index)
            index += 1
        } while consume(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
    }

    /// A string's contents as UTF-8, escapes decoded (surrogate pairs joined).
    package mutating func readString() throws -> [UInt8] {
        var result: [UInt8] = []
        try readString(into: &result)
        return result
    }

    /// Appends a string's contents as UTF-8 to `result`.
    package mutating func readString(into result: inout [UInt8]) throws {
        try expect(UInt8(ascii: "\""))
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { break }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): result.append(escape)
                case UInt8(ascii: "b"): result.append(0x08)
                case UInt8(ascii: "f"): result.append(0x0C)
                case UInt8(ascii: "n"): result.append(0x0A)
                case UInt8(ascii: "r"): result.append(0x0D)
                case UInt8(ascii: "t"): result.append(0x09)
                case UInt8(ascii: "u"): try appendUnicodeEscape(to: &result)
                default: throw error("unknown escape '\\\(Character(Unicode.Scalar(escape)))' in a string")
                }
            case 0..<0x20:
                throw error("control character 0x\(String(byte, radix: 16)) inside a string")
            default:
                result.append(byte)
            }
        }
        throw error("unterminated string")
    }

    private mutating func readHex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            position += 1
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("bad hexadecimal digit in a \\u escape")
            }
            value = value << 4 | digit
        }
        return value
    }

    private mutating func appendUnicodeEscape(to result: inout [UInt8]) throws {
        var value = try readHex4()
        if (0xD800..<0xDC00).contains(value) {
            guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                throw error("unpaired surrogate in a \\u escape")
            }
            position += 2
            let low = try readHex4()
            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in a \\u escape") }
            value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(value) else { throw error("\\u escape is not a Unicode scalar") }
        result.append(contentsOf: UTF8.encode(scalar)!)
    }

    /// An integer (no fraction or exponent).
    package mutating func readInteger() throws -> Int {
        skipWhitespace()
        var negative = false
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        var value = 0
        var digits = 0
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int(bytes[position] - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw error("integer too large") }
            value = sum
            digits += 1
            position += 1
        }
        guard digits > 0 else { throw error("expected an integer") }
        if position < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) {
            throw error("expected an integer, found a fraction or exponent")
        }
        return negative ? -value : value
    }

    /// An integer that is the value of `key` (the error names the key).
    package mutating func readInteger(for key: [UInt8]) throws -> Int {
        do { return try readInteger() } catch let failure as TensorFileError {
            throw TensorFileError(path: failure.path, "\(failure.message) (the value of key '\(String(decoding: key, as: UTF8.self))')")
        }
    }

    /// Skips any value (object, array, string, number, true, false, null).
    package mutating func skipValue() throws {
        switch peek() {
        case UInt8(ascii: "{"): try readObject { scanner, _ in try scanner.skipValue() }
        case UInt8(ascii: "["): try readArray { scanner, _ in try scanner.skipValue() }
        case UInt8(ascii: "\""): _ = try readString()
        case nil: throw error("expected a value, found the end of the file")
        default:
            let start = position
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D:
                    guard position > start else { throw error("expected a value") }
                    return
                default: position += 1
                }
            }
        }
    }

    /// A string value, or nil for `null`.
    package mutating func readOptionalString() throws -> [UInt8]? {
        if peek() == UInt8(ascii: "n") {
            try skipValue()
            return nil
        }
        return try readString()
    }

    /// Fails unless only whitespace remains.
    package mutating func expectEnd() throws {
        guard peek() == nil else { throw error("unexpected text after the JSON value") }
    }
}
