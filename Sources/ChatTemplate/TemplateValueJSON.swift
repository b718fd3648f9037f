extension TemplateValue {
    /// The value of JSON `text`, read as Python's `json.loads` reads it: objects keep the order
    /// of their keys (a repeated key keeps its last value), numbers without a fraction or exponent
    /// are integers, `NaN` and `Infinity` are accepted.
    ///
    /// - Throws: ``TemplateError`` naming the byte offset of the first thing that is not JSON, or
    ///   a nesting deeper than 512 levels.
    public init(parsingJSON text: String) throws {
        var parser = JSONReader(bytes: Array(text.utf8))
        parser.skipWhitespace()
        self = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == parser.bytes.count else { throw parser.error("unexpected text after the JSON value") }
    }
}

/// Recursive descent over UTF-8 bytes.
private struct JSONReader {
    let bytes: [UInt8]
    var position = 0
    static let maximumDepth = 512

    init(bytes: [UInt8]) { self.bytes = bytes }

    func error(_ message: String) -> TemplateError { TemplateError("JSON at byte \(position): \(message)") }

    mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x0a, 0x0d, 0x09].contains(bytes[position]) { position += 1 }
    }

    private mutating func consume(_ literal: String) -> Bool {
        let expected = Array(literal.utf8)
        guard bytes.count - position >= expected.count,
              bytes[position..<position + expected.count].elementsEqual(expected) else { return false }
        position += expected.count
        return true
    }

    mutating func value(depth: Int) throws -> TemplateValue {
        guard depth < Self.maximumDepth else { throw error("nested deeper than \(Self.maximumDepth) levels") }
        guard position < bytes.count else { throw error("expected a value at the end of the text") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            var members: [(key: String, value: TemplateValue)] = []
            var indexOfKey: [String: Int] = [:]
            skipWhitespace()
            if consume("}") { return .object(members) }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw error("expected a string key")
                }
                let key = try string()
                skipWhitespace()
                guard consume(":") else { throw error("expected ':' after a key") }
                skipWhitespace()
                let member = try value(depth: depth + 1)
                if let index = indexOfKey[key] { members[index].value = member } else {
                    indexOfKey[key] = members.count
                    members.append((key: key, value: member))
                }
                skipWhitespace()
                if consume("}") { return .object(members) }
                guard consume(",") else { throw error("expected ',' or '}' in an object") }
            }
        case UInt8(ascii: "["):
            position += 1
            var items: [TemplateValue] = []
            skipWhitespace()
            if consume("]") { return .array(items) }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                if consume("]") { return .array(items) }
                guard consume(",") else { throw error("expected ',' or ']' in an array") }
            }
        case UInt8(ascii: "\""): return .string(try string())
        default:
            if consume("true") { return .bool(true) }
            if consume("false") { return .bool(false) }
            if consume("null") { return .null }
            if consume("NaN") { return .double(.nan) }
            if consume("Infinity") { return .double(.infinity) }
            if consume("-Infinity") { return .double(-.infinity) }
            return try number()
        }
    }

    private mutating func number() throws -> TemplateValue {
        let start = position
        var isInteger = true
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        let digitsStart = position
        skipDigits()
        guard position > digitsStart else { throw error("expected a value") }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            let fractionStart = position
            skipDigits()
            guard position > fractionStart else { throw error("expected digits after '.'") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            let exponentStart = position
            skipDigits()
            guard position > exponentStart else { throw error("expected digits in an exponent") }
        }
        let literal = String(decoding: bytes[start..<position], as: UTF8.self)
        // An integer too large for 64 bits becomes a float (Python would keep it exact).
        if isInteger, let value = Int(literal) { return .int(value) }
        guard let value = Double(literal) else { throw error("the number \(literal) cannot be read") }
        return .double(value)
    }

    private mutating func skipDigits() {
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        while position < bytes.count, digits.contains(bytes[position]) { position += 1 }
    }

    /// A string literal starting at the opening quote.
    private mutating func string() throws -> String {
        position += 1
        var scalars = String.UnicodeScalarView()
        var runStart = position
        func flush(_ end: Int) {
            scalars.append(contentsOf: String(decoding: bytes[runStart..<end], as: UTF8.self).unicodeScalars)
        }
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                flush(position)
                position += 1
                return String(scalars)
            }
            if byte < 0x20 { throw error("a control character inside a string") }
            guard byte == UInt8(ascii: "\\") else {
                position += 1
                continue
            }
            flush(position)
            position += 1
            guard position < bytes.count else { break }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = try hexQuad()
                if (0xD800..<0xDC00).contains(code), consume("\\u") {
                    let low = try hexQuad()
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        // A lone high surrogate then another escape: Swift strings cannot hold the
                        // surrogate, so it becomes U+FFFD and the second escape stands alone.
                        scalars.append("\u{FFFD}")
                        code = low
                    }
                }
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: throw error("an unknown escape '\\\(Character(Unicode.Scalar(escape)))'")
            }
            runStart = position
        }
        throw error("a string is never closed")
    }

    private mutating func hexQuad() throws -> UInt32 {
        guard bytes.count - position >= 4,
              let code = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16) else {
            throw error("expected four hexadecimal digits after '\\u'")
        }
        position += 4
        return code
    }
}
