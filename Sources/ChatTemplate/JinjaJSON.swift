/// The `tojson` filter as transformers' `apply_chat_template` defines it (not Jinja's own, which
/// escapes HTML): Python's `json.dumps(value, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, with those four options by position or keyword.
struct JinjaJSON {
    /// `\uXXXX` for every code point outside printable ASCII (surrogate pairs above U+FFFF).
    var ensureASCII = false
    /// A newline and this per level before every item; nil writes everything on one line.
    var indent: String?
    var itemSeparator = ", ", keySeparator = ": "
    var sortKeys = false
    /// Deeper than this is refused, as Python refuses a circular structure.
    static let maximumDepth = 500

    init(_ positional: [JinjaValue], _ keywords: [String: JinjaValue]) throws {
        let names = ["ensure_ascii", "indent", "separators", "sort_keys"]
        guard positional.count <= names.count else { throw TemplateError("tojson() takes at most 4 arguments") }
        var options = keywords
        for (name, value) in zip(names, positional) {
            guard options[name] == nil else { throw TemplateError("tojson() got multiple values for '\(name)'") }
            options[name] = value
        }
        if let unknown = options.keys.first(where: { !names.contains($0) }) {
            throw TemplateError("tojson() got an unexpected keyword argument '\(unknown)'")
        }
        ensureASCII = options["ensure_ascii"]?.isTruthy ?? false
        sortKeys = options["sort_keys"]?.isTruthy ?? false
        switch options["indent"] ?? .none {
        case .none, .undefined: indent = nil
        case .int(let spaces): indent = String(repeating: " ", count: max(0, spaces))
        case .string(let text): indent = text
        case let other: throw TemplateError("tojson() takes an integer or string indent, not a \(other.kind)")
        }
        if indent != nil { itemSeparator = "," }
        switch options["separators"] ?? .none {
        case .none, .undefined: break
        case .array(let pair):
            guard pair.count == 2, case .string(let item) = pair[0], case .string(let key) = pair[1] else {
                throw TemplateError("tojson() separators must be two strings")
            }
            (itemSeparator, keySeparator) = (item, key)
        case let other: throw TemplateError("tojson() separators must be two strings, not a \(other.kind)")
        }
    }

    func write(_ value: JinjaValue) throws -> String {
        var output = ""
        try write(value, depth: 0, into: &output)
        return output
    }

    private func write(_ value: JinjaValue, depth: Int, into output: inout String) throws {
        guard depth < Self.maximumDepth else {
            throw TemplateError("tojson() met a value nested deeper than \(Self.maximumDepth) levels")
        }
        switch value {
        case .none: output += "null"
        case .bool(let flag): output += flag ? "true" : "false"
        case .int(let number): output += String(number)
        case .double(let number):
            if number.isNaN { output += "NaN" }
            else if number.isInfinite { output += number < 0 ? "-Infinity" : "Infinity" }
            else { output += PythonString.float(number) }
        case .string(let text): output += quoted(text)
        case .array(let items):
            guard !items.isEmpty else { return output += "[]" }
            output += "["
            for (index, item) in items.enumerated() {
                output += index == 0 ? "" : itemSeparator
                newline(depth + 1, into: &output)
                try write(item, depth: depth + 1, into: &output)
            }
            newline(depth, into: &output)
            output += "]"
        case .object(let object):
            var pairs = object.pairs
            guard !pairs.isEmpty else { return output += "{}" }
            if sortKeys { pairs.sort { PythonString.less($0.key, $1.key) } }
            output += "{"
            for (index, pair) in pairs.enumerated() {
                output += index == 0 ? "" : itemSeparator
                newline(depth + 1, into: &output)
                output += quoted(pair.key) + keySeparator
                try write(pair.value, depth: depth + 1, into: &output)
            }
            newline(depth, into: &output)
            output += "}"
        case .undefined, .namespace, .function:
            // Python's message, so an error reads the same from either.
            let type = switch value { case .undefined: "Undefined" case .namespace: "Namespace" default: "function" }
            throw TemplateError("Object of type \(type) is not JSON serializable")
        }
    }

    private func newline(_ depth: Int, into output: inout String) {
        guard let indent else { return }
        output += "\n" + String(repeating: indent, count: depth)
    }

    /// A JSON string as Python writes it: `\"`, `\\`, `\b \f \n \r \t`, other control characters
    /// as lowercase `\u00XX`; with `ensureASCII`, everything past `~` as `\uXXXX`.
    private func quoted(_ text: String) -> String {
        var result = String.UnicodeScalarView(["\""])
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result.append(contentsOf: "\\\"".unicodeScalars)
            case "\\": result.append(contentsOf: "\\\\".unicodeScalars)
            case "\u{08}": result.append(contentsOf: "\\b".unicodeScalars)
            case "\u{0C}": result.append(contentsOf: "\\f".unicodeScalars)
            case "\n": result.append(contentsOf: "\\n".unicodeScalars)
            case "\r": result.append(contentsOf: "\\r".unicodeScalars)
            case "\t": result.append(contentsOf: "\\t".unicodeScalars)
            default:
                if scalar.value < 0x20 || (ensureASCII && scalar.value > 0x7E) {
                    for unit in String(scalar).utf16 {
                        result.append(contentsOf: ("\\u" + PythonString.hex(UInt32(unit), digits: 4)).unicodeScalars)
                    }
                } else {
                    result.append(scalar)
                }
            }
        }
        result.append("\"")
        return String(result)
    }
}
