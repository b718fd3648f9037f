/// Python's `str` on code points. Swift's `String` compares, searches and counts by grapheme
/// clusters under canonical equivalence (`"e\u{301}" == "é"`, `"\r\n"` is one character), while
/// Python, and so every template, works on code points: `len`, indices, slices, `startswith`,
/// `split`, `in` and `==` here do too.
enum PythonString {
    /// Python's `str.isspace()`: Unicode whitespace plus the ASCII separators U+001C…U+001F.
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }

    static func scalars(_ text: String) -> [Unicode.Scalar] { Array(text.unicodeScalars) }

    static func string<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    static func equal(_ a: String, _ b: String) -> Bool { a.unicodeScalars.elementsEqual(b.unicodeScalars) }

    /// Python's ordering of strings: by code point.
    static func less(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
    }

    /// The first index at or after `start` where `needle` occurs in `haystack`.
    static func find(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], from start: Int = 0) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        guard !needle.isEmpty else { return start <= haystack.count ? start : nil }
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0], haystack[index..<index + needle.count].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }

    static func contains(_ text: String, _ part: String) -> Bool { find(scalars(part), in: scalars(text)) != nil }

    static func hasPrefix(_ text: String, _ prefix: String) -> Bool {
        text.unicodeScalars.starts(with: prefix.unicodeScalars)
    }

    static func hasSuffix(_ text: String, _ suffix: String) -> Bool {
        text.unicodeScalars.reversed().starts(with: suffix.unicodeScalars.reversed())
    }

    /// `str.strip(chars)`, `lstrip`, `rstrip`: `chars` nil strips whitespace.
    static func strip(_ text: String, _ characters: String?, leading: Bool, trailing: Bool) -> String {
        let set = characters.map { Set($0.unicodeScalars) }
        let stripped = { (scalar: Unicode.Scalar) in set?.contains(scalar) ?? isSpace(scalar) }
        var items = scalars(text)[...]
        if leading { items = items.drop(while: stripped) }
        if trailing { while let last = items.last, stripped(last) { items.removeLast() } }
        return string(items)
    }

    /// `str.split(separator, maxsplit)`; without a separator, runs of whitespace split and
    /// leading and trailing whitespace is dropped.
    static func split(_ text: String, _ separator: String?, maximumSplits: Int = -1) throws -> [String] {
        let items = scalars(text)
        var parts: [String] = []
        guard let separator else {
            var index = 0
            while index < items.count {
                while index < items.count, isSpace(items[index]) { index += 1 }
                guard index < items.count else { break }
                if maximumSplits >= 0, parts.count == maximumSplits {
                    // The rest, its trailing whitespace dropped, is the last part.
                    parts.append(strip(string(items[index...]), nil, leading: false, trailing: true))
                    return parts
                }
                let start = index
                while index < items.count, !isSpace(items[index]) { index += 1 }
                parts.append(string(items[start..<index]))
            }
            return parts
        }
        let needle = scalars(separator)
        guard !needle.isEmpty else { throw TemplateError("split() got an empty separator") }
        var start = 0
        while maximumSplits < 0 || parts.count < maximumSplits, let found = find(needle, in: items, from: start) {
            parts.append(string(items[start..<found]))
            start = found + needle.count
        }
        parts.append(string(items[start...]))
        return parts
    }

    /// `str.replace(old, new, count)`.
    static func replace(_ text: String, _ old: String, _ new: String, count: Int = -1) -> String {
        let items = scalars(text), needle = scalars(old), replacement = scalars(new)
        var result: [Unicode.Scalar] = [], start = 0, done = 0
        if needle.isEmpty {
            // Python inserts `new` between every code point and at both ends.
            for scalar in items {
                if count < 0 || done < count { result += replacement; done += 1 }
                result.append(scalar)
            }
            if count < 0 || done < count { result += replacement }
            return string(result)
        }
        while count < 0 || done < count, let found = find(needle, in: items, from: start) {
            result += items[start..<found]
            result += replacement
            start = found + needle.count
            done += 1
        }
        result += items[start...]
        return string(result)
    }

    /// Python's `repr` of a string: single quotes unless the text holds a single quote and no
    /// double quote; backslashes, the quote and control characters escaped.
    static func representation(_ text: String) -> String {
        let prefersDouble = text.unicodeScalars.contains("'") && !text.unicodeScalars.contains("\"")
        let quote: Unicode.Scalar = prefersDouble ? "\"" : "'"
        var result = String.UnicodeScalarView([quote])
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result.append(contentsOf: "\\\\".unicodeScalars)
            case quote: result.append(contentsOf: "\\\(quote)".unicodeScalars)
            case "\n": result.append(contentsOf: "\\n".unicodeScalars)
            case "\r": result.append(contentsOf: "\\r".unicodeScalars)
            case "\t": result.append(contentsOf: "\\t".unicodeScalars)
            default:
                let value = scalar.value
                if !isPrintable(scalar) {
                    let escape = value <= 0xFF ? "\\x" + hex(value, digits: 2)
                        : value <= 0xFFFF ? "\\u" + hex(value, digits: 4) : "\\U" + hex(value, digits: 8)
                    result.append(contentsOf: escape.unicodeScalars)
                } else {
                    result.append(scalar)
                }
            }
        }
        result.append(quote)
        return String(result)
    }

    /// Python's `str.isprintable()` for one code point: not a control, format, surrogate,
    /// private-use, unassigned or separator character (the space excepted).
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == " " { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned,
             .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default: return true
        }
    }

    static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// Python's `repr(float)`: the shortest digits that read back to the same number (as Swift's
    /// `description` finds them), written positionally from 1e-4 up to 1e16 and with an exponent
    /// of at least two digits outside that range.
    static func float(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        let sign = value.sign == .minus ? "-" : ""
        let description = abs(value).description
        let parts = description.split(separator: "e", maxSplits: 1)
        let exponent = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        let mantissa = parts[0].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        var digits = Array(mantissa[0] + (mantissa.count > 1 ? mantissa[1] : ""))
        // `point`: how many digits stand before the decimal point.
        var point = mantissa[0].count + exponent
        while digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        guard !digits.isEmpty else { return sign + "0.0" }
        let decimalExponent = point - 1
        if (-4..<16).contains(decimalExponent) {
            if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + String(digits) }
            if point >= digits.count {
                return sign + String(digits) + String(repeating: "0", count: point - digits.count) + ".0"
            }
            return sign + String(digits[..<point]) + "." + String(digits[point...])
        }
        let fraction = digits.count > 1 ? "." + String(digits[1...]) : ""
        let magnitude = String(abs(decimalExponent))
        return sign + String(digits[0]) + fraction + "e" + (decimalExponent < 0 ? "-" : "+")
            + (magnitude.count < 2 ? "0" : "") + magnitude
    }
}
