import Foundation

extension JinjaBuiltins {
    /// `text.strip()`, `dict.items()` and the rest, bound to `base`, with Python's meaning on
    /// code points (``PythonString``); nil when Python has no such method the interpreter knows.
    static func method(_ base: JinjaValue, _ name: String) -> JinjaValue? {
        switch base {
        case .string(let text): stringMethod(text, name)
        case .object(let object): dictionaryMethod(object, name)
        default: nil
        }
    }

    /// The string argument at `index` (positional or by keyword), nil when absent or None.
    private static func optionalString(_ positional: [JinjaValue], _ index: Int, _ keywords: [String: JinjaValue],
                                       _ keyword: String, method: String) throws -> String? {
        let value = index < positional.count ? positional[index] : keywords[keyword] ?? .none
        switch value {
        case .none, .undefined: return nil
        case .string(let text): return text
        default: throw TemplateError("\(method)() takes a string, not a \(value.kind)")
        }
    }

    private static func optionalInteger(_ positional: [JinjaValue], _ index: Int, _ keywords: [String: JinjaValue],
                                        _ keyword: String, method: String, fallback: Int) throws -> Int {
        let value = index < positional.count ? positional[index] : keywords[keyword] ?? .none
        switch value {
        case .none, .undefined: return fallback
        case .int(let number): return number
        default: throw TemplateError("\(method)() takes an integer, not a \(value.kind)")
        }
    }

    private static func stringMethod(_ text: String, _ name: String) -> JinjaValue? {
        switch name {
        case "strip", "lstrip", "rstrip": return .function { positional, keywords in
            let characters = try optionalString(positional, 0, keywords, "chars", method: name)
            return .string(PythonString.strip(text, characters, leading: name != "rstrip", trailing: name != "lstrip"))
        }
        case "upper": return .function { _, _ in .string(text.uppercased()) }
        case "lower": return .function { _, _ in .string(text.lowercased()) }
        case "title": return .function { _, _ in .string(text.capitalized) }
        case "capitalize": return .function { _, _ in
            .string(text.prefix(1).uppercased() + text.dropFirst().lowercased())
        }
        case "startswith", "endswith": return .function { positional, _ in
            // One affix or a tuple (a list here) of them.
            let candidates: [JinjaValue]
            if case .array(let values) = positional.first ?? .none { candidates = values }
            else { candidates = Array(positional.prefix(1)) }
            return .bool(try candidates.contains { value in
                guard case .string(let affix) = value else {
                    throw TemplateError("\(name)() takes a string, not a \(value.kind)")
                }
                return name == "startswith" ? PythonString.hasPrefix(text, affix) : PythonString.hasSuffix(text, affix)
            })
        }
        case "split": return .function { positional, keywords in
            let separator = try optionalString(positional, 0, keywords, "sep", method: name)
            let limit = try optionalInteger(positional, 1, keywords, "maxsplit", method: name, fallback: -1)
            return .array(try PythonString.split(text, separator, maximumSplits: limit).map { .string($0) })
        }
        case "replace": return .function { positional, _ in
            guard positional.count >= 2, case .string(let old) = positional[0],
                  case .string(let new) = positional[1] else {
                throw TemplateError("replace() takes two strings")
            }
            let count: Int = if positional.count > 2, case .int(let limit) = positional[2] { limit } else { -1 }
            return .string(PythonString.replace(text, old, new, count: count))
        }
        case "join": return .function { positional, _ in
            .string(try iterate(positional.first ?? .undefined).map(\.printed).joined(separator: text))
        }
        case "find", "count": return .function { positional, _ in
            guard case .string(let part) = positional.first ?? .none else {
                throw TemplateError("\(name)() takes a string")
            }
            let haystack = PythonString.scalars(text), needle = PythonString.scalars(part)
            if name == "find" { return .int(PythonString.find(needle, in: haystack) ?? -1) }
            guard !needle.isEmpty else { return .int(haystack.count + 1) }
            var count = 0, start = 0
            while let found = PythonString.find(needle, in: haystack, from: start) {
                count += 1
                start = found + needle.count
            }
            return .int(count)
        }
        case "format": return .function { positional, _ in
            var result = text
            for argument in positional {
                guard let range = result.range(of: "%s") ?? result.range(of: "{}") else { break }
                result.replaceSubrange(range, with: argument.printed)
            }
            return .string(result)
        }
        default: return nil
        }
    }

    private static func dictionaryMethod(_ object: JinjaObject, _ name: String) -> JinjaValue? {
        switch name {
        case "items": return .function { _, _ in .array(object.pairs.map { .array([.string($0.key), $0.value]) }) }
        case "keys": return .function { _, _ in .array(object.keys.map { .string($0) }) }
        case "values": return .function { _, _ in .array(object.pairs.map(\.value)) }
        case "get": return .function { positional, _ in
            // Only string keys exist here; any other key is missing, as in Python.
            guard let key = positional.first else { throw TemplateError("get() takes a key") }
            let fallback = positional.count > 1 ? positional[1] : .none
            guard case .string(let name) = key else { return fallback }
            return object[name] ?? fallback
        }
        default: return nil
        }
    }
}
