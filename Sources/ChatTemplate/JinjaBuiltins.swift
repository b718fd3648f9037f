import Foundation

/// The functions, filters, tests, methods and operators that chat templates use, with Python's
/// and Jinja's meaning. Anything else is an error naming it.
enum JinjaBuiltins {
    static var globals: [String: JinjaValue] { [
        "range": .function { positional, _ in
            let bounds = try positional.map { value -> Int in
                guard case .int(let number) = value else { throw TemplateError("range() takes integers, not a \(value.kind)") }
                return number
            }
            let (start, stop, step) = bounds.count == 1 ? (0, bounds[0], 1) : bounds.count == 2 ? (bounds[0], bounds[1], 1)
                : bounds.count == 3 ? (bounds[0], bounds[1], bounds[2]) : (0, 0, 0)
            guard step != 0, (stop - start) / step < 1 << 20 else { throw TemplateError("range() arguments are not usable") }
            return .array(Swift.stride(from: start, to: stop, by: step).map { .int($0) })
        },
        "raise_exception": .function { positional, _ in
            throw TemplateError("the template raised an exception: \(positional.first?.printed ?? "")")
        },
        "namespace": .function { _, keywords in .namespace(JinjaNamespace(keywords)) },
        "strftime_now": .function { positional, _ in
            guard case .string(let format) = positional.first ?? .undefined else { throw TemplateError("strftime_now() takes a format string") }
            var now = time(nil), parts = tm()
            localtime_r(&now, &parts)
            var buffer = [Int8](repeating: 0, count: 256)
            let count = strftime(&buffer, buffer.count, format, &parts)
            return .string(String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        },
    ] }

    /// The items of a list, the characters of a string, the keys of a dictionary.
    static func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .array(let items): return items
        case .string(let text): return text.map { .string(String($0)) }
        case .object(let object): return object.keys.map { .string($0) }
        case .undefined, .none: return []
        default: throw TemplateError("a \(value.kind) is not iterable")
        }
    }

    static func attribute(_ base: JinjaValue, _ name: String) throws -> JinjaValue {
        switch base {
        case .object(let object):
            if let value = object[name] { return value }
            return method(base, name) ?? .undefined
        case .namespace(let namespace): return namespace.attributes[name] ?? .undefined
        case .undefined: return .undefined
        default:
            if let bound = method(base, name) { return bound }
            throw TemplateError("a \(base.kind) has no attribute '\(name)'")
        }
    }

    static func element(_ base: JinjaValue, _ index: JinjaValue) throws -> JinjaValue {
        switch (base, index) {
        case (.array(let items), .int(let position)):
            let resolved = position < 0 ? items.count + position : position
            guard items.indices.contains(resolved) else { throw TemplateError("list index \(position) is out of range (\(items.count) items)") }
            return items[resolved]
        case (.string(let text), .int(let position)):
            let characters = Array(text)
            let resolved = position < 0 ? characters.count + position : position
            guard characters.indices.contains(resolved) else { throw TemplateError("string index \(position) is out of range") }
            return .string(String(characters[resolved]))
        case (.object, .string(let key)), (.namespace, .string(let key)): return try attribute(base, key)
        case (.undefined, _): return .undefined
        default: throw TemplateError("cannot index a \(base.kind) with a \(index.kind)")
        }
    }

    static func slice(_ base: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        func integer(_ value: JinjaValue?) throws -> Int? {
            guard let value, !(value.isUndefined) else { return nil }
            if case .none = value { return nil }
            guard case .int(let number) = value else { throw TemplateError("slice bounds must be integers") }
            return number
        }
        let items: [JinjaValue], isString: Bool
        switch base {
        case .array(let values): (items, isString) = (values, false)
        case .string(let text): (items, isString) = (text.map { .string(String($0)) }, true)
        default: throw TemplateError("cannot slice a \(base.kind)")
        }
        let count = items.count, stride = try integer(step) ?? 1
        guard stride != 0 else { throw TemplateError("slice step cannot be zero") }
        func clamp(_ bound: Int?, _ fallback: Int) -> Int {
            guard var bound else { return fallback }
            if bound < 0 { bound += count }
            return stride > 0 ? min(max(bound, 0), count) : min(max(bound, -1), count - 1)
        }
        let from = clamp(try integer(start), stride > 0 ? 0 : count - 1), to = clamp(try integer(stop), stride > 0 ? count : -1)
        var result: [JinjaValue] = []
        var index = from
        while stride > 0 ? index < to : index > to {
            result.append(items[index])
            index += stride
        }
        return isString ? .string(result.map(\.printed).joined()) : .array(result)
    }

    // MARK: Methods

    /// `text.strip()`, `dict.items()` and the rest, bound to `base`; nil when there is none.
    static func method(_ base: JinjaValue, _ name: String) -> JinjaValue? {
        switch base {
        case .string(let text):
            func characters(_ arguments: [JinjaValue]) -> Set<Character> {
                if case .string(let set) = arguments.first ?? .none { return Set(set) }
                return []
            }
            func isStripped(_ character: Character, _ set: Set<Character>) -> Bool { set.isEmpty ? character.isWhitespace : set.contains(character) }
            switch name {
            case "strip": return .function { arguments, _ in
                let set = characters(arguments)
                return .string(String(text.drop { isStripped($0, set) }.reversed().drop { isStripped($0, set) }.reversed()))
            }
            case "lstrip": return .function { arguments, _ in .string(String(text.drop { isStripped($0, characters(arguments)) })) }
            case "rstrip": return .function { arguments, _ in
                .string(String(text.reversed().drop { isStripped($0, characters(arguments)) }.reversed()))
            }
            case "upper": return .function { _, _ in .string(text.uppercased()) }
            case "lower": return .function { _, _ in .string(text.lowercased()) }
            case "title": return .function { _, _ in .string(text.capitalized) }
            case "capitalize": return .function { _, _ in .string(text.prefix(1).uppercased() + text.dropFirst().lowercased()) }
            case "startswith", "endswith": return .function { arguments, _ in
                let candidates: [JinjaValue]
                if case .array(let values) = arguments.first ?? .none { candidates = values } else { candidates = Array(arguments.prefix(1)) }
                return .bool(candidates.contains { value in
                    guard case .string(let affix) = value else { return false }
                    return name == "startswith" ? text.hasPrefix(affix) : text.hasSuffix(affix)
                })
            }
            case "split": return .function { arguments, _ in
                if case .string(let separator) = arguments.first ?? .none, !separator.isEmpty {
                    return .array(text.components(separatedBy: separator).map { .string($0) })
                }
                return .array(text.split(whereSeparator: \.isWhitespace).map { .string(String($0)) })
            }
            case "replace": return .function { arguments, _ in
                guard arguments.count >= 2, case .string(let old) = arguments[0], case .string(let new) = arguments[1] else {
                    throw TemplateError("replace() takes two strings")
                }
                return .string(text.replacingOccurrences(of: old, with: new))
            }
            case "format": return .function { arguments, _ in
                var result = text
                for argument in arguments {
                    guard let range = result.range(of: "%s") ?? result.range(of: "{}") else { break }
                    result.replaceSubrange(range, with: argument.printed)
                }
                return .string(result)
            }
            default: return nil
            }
        case .object(let object):
            switch name {
            case "items": return .function { _, _ in .array(object.pairs.map { .array([.string($0.key), $0.value]) }) }
            case "keys": return .function { _, _ in .array(object.keys.map { .string($0) }) }
            case "values": return .function { _, _ in .array(object.pairs.map(\.value)) }
            case "get": return .function { arguments, _ in
                guard case .string(let key) = arguments.first ?? .none else { throw TemplateError("get() takes a string key") }
                return object[key] ?? (arguments.count > 1 ? arguments[1] : .none)
            }
            default: return nil
            }
        default:
            return nil
        }
    }

    // MARK: Filters

    static func filter(_ name: String, _ value: JinjaValue, _ arguments: [JinjaValue], _ keywords: [String: JinjaValue]) throws -> JinjaValue {
        switch name {
        case "trim":
            guard case .string = value else { return value }
            return try method(value, "strip").map { if case .function(let body) = $0 { try body([], [:]) } else { value } } ?? value
        case "upper", "lower", "title", "capitalize":
            guard let bound = method(value, name), case .function(let body) = bound else { throw TemplateError("filter '\(name)' needs a string") }
            return try body([], [:])
        case "length", "count":
            switch value {
            case .string(let text): return .int(text.count)
            case .array(let items): return .int(items.count)
            case .object(let object): return .int(object.keys.count)
            default: throw TemplateError("a \(value.kind) has no length")
            }
        case "first": return try iterate(value).first ?? .undefined
        case "last": return try iterate(value).last ?? .undefined
        case "reverse":
            if case .string(let text) = value { return .string(String(text.reversed())) }
            return .array(try iterate(value).reversed())
        case "list": return .array(try iterate(value))
        case "string": return .string(value.printed)
        case "int":
            if case .string(let text) = value { return .int(Int(text.trimmingCharacters(in: .whitespaces)) ?? 0) }
            return .int(Int(value.number ?? 0))
        case "float":
            if case .string(let text) = value { return .double(Double(text) ?? 0) }
            return .double(value.number ?? 0)
        case "default", "d":
            let fallback = arguments.first ?? .string("")
            let strict = arguments.count > 1 && arguments[1].isTruthy
            return value.isUndefined || (strict && !value.isTruthy) ? fallback : value
        case "join":
            let separator = arguments.first?.printed ?? ""
            return .string(try iterate(value).map(\.printed).joined(separator: separator))
        case "replace":
            guard let bound = method(.string(value.printed), "replace"), case .function(let body) = bound else { return value }
            return try body(arguments, [:])
        case "tojson":
            let indent: Int? = if case .int(let spaces) = keywords["indent"] ?? arguments.first ?? .none { spaces } else { nil }
            return .string(try json(value, indent: indent, depth: 0))
        case "safe", "escape", "e": return value
        case "items":
            guard let bound = method(value, "items"), case .function(let body) = bound else { throw TemplateError("filter 'items' needs a dict") }
            return try body([], [:])
        case "selectattr", "rejectattr":
            guard case .string(let attribute) = arguments.first ?? .none else { throw TemplateError("\(name) needs an attribute name") }
            let testName: String = if case .string(let given) = arguments.count > 1 ? arguments[1] : .none { given } else { "" }
            let kept = try iterate(value).filter { item in
                let field = try self.attribute(item, attribute)
                let passes = testName.isEmpty ? field.isTruthy : try test(testName, field, Array(arguments.dropFirst(2)))
                return passes == (name == "selectattr")
            }
            return .array(kept)
        case "map":
            if case .string(let attribute) = keywords["attribute"] ?? .none {
                return .array(try iterate(value).map { try self.attribute($0, attribute) })
            }
            guard case .string(let filterName) = arguments.first ?? .none else { throw TemplateError("map needs attribute= or a filter name") }
            return .array(try iterate(value).map { try filter(filterName, $0, Array(arguments.dropFirst()), [:]) })
        default:
            throw TemplateError("the filter '\(name)' is not implemented")
        }
    }

    /// JSON as Python's `json.dumps(value, ensure_ascii=False, indent=…)` writes it.
    static func json(_ value: JinjaValue, indent: Int?, depth: Int) throws -> String {
        let newline = indent.map { "\n" + String(repeating: " ", count: $0 * (depth + 1)) } ?? ""
        let closing = indent.map { "\n" + String(repeating: " ", count: $0 * depth) } ?? ""
        let separator = indent == nil ? ", " : ","
        switch value {
        case .undefined, .none: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .double(let number): return value.printed == "inf" ? "Infinity" : String(number)
        case .string(let text):
            var escaped = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case "\n": escaped += "\\n"
                case "\r": escaped += "\\r"
                case "\t": escaped += "\\t"
                default:
                    if scalar.value < 0x20 { escaped += String(format: "\\u%04x", scalar.value) } else { escaped.unicodeScalars.append(scalar) }
                }
            }
            return escaped + "\""
        case .array(let items):
            guard !items.isEmpty else { return "[]" }
            return "[" + newline + (try items.map { try json($0, indent: indent, depth: depth + 1) }).joined(separator: separator + newline) + closing + "]"
        case .object(let object):
            guard !object.keys.isEmpty else { return "{}" }
            let members = try object.pairs.map { try json(.string($0.key), indent: nil, depth: 0) + ": " + json($0.value, indent: indent, depth: depth + 1) }
            return "{" + newline + members.joined(separator: separator + newline) + closing + "}"
        case .namespace, .function: throw TemplateError("a \(value.kind) cannot be written as JSON")
        }
    }

    // MARK: Tests

    static func test(_ name: String, _ value: JinjaValue, _ arguments: [JinjaValue]) throws -> Bool {
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "string": if case .string = value { return true } else { return false }
        case "number": return value.number != nil && !({ if case .bool = value { true } else { false } }())
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "mapping": if case .object = value { return true } else { return false }
        case "sequence", "iterable":
            switch value {
            case .array, .string, .object: return true
            default: return false
            }
        case "callable": if case .function = value { return true } else { return false }
        case "equalto", "eq", "==", "sameas": return value.equals(arguments.first ?? .undefined)
        case "ne", "!=": return !value.equals(arguments.first ?? .undefined)
        case "odd", "even":
            guard case .int(let number) = value else { throw TemplateError("test '\(name)' needs an integer") }
            return (number % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case .int(let number) = value, case .int(let divisor) = arguments.first ?? .none, divisor != 0 else {
                throw TemplateError("test 'divisibleby' needs integers")
            }
            return number % divisor == 0
        case "in": return try binary("in", value, arguments.first ?? .undefined).isTruthy
        default: throw TemplateError("the test '\(name)' is not implemented")
        }
    }

    // MARK: Operators

    static func binary(_ symbol: String, _ left: JinjaValue, _ right: JinjaValue) throws -> JinjaValue {
        let result = try combine(symbol, left, right)
        // Doubling a string in a loop would otherwise exhaust memory long before any loop limit.
        let tooLarge: Bool = switch result {
        case .string(let text): text.utf8.count > JinjaInterpreter.maximumOutput
        case .array(let items): items.count > JinjaInterpreter.maximumOutput / 8
        default: false
        }
        guard !tooLarge else { throw TemplateError("the template builds a value larger than \(JinjaInterpreter.maximumOutput >> 20) MiB") }
        return result
    }

    private static func combine(_ symbol: String, _ left: JinjaValue, _ right: JinjaValue) throws -> JinjaValue {
        switch symbol {
        case "==": return .bool(left.equals(right))
        case "!=": return .bool(!left.equals(right))
        case "~": return .string(left.printed + right.printed)
        case "in":
            switch right {
            case .string(let text):
                guard case .string(let part) = left else { throw TemplateError("'in <string>' needs a string on the left, not a \(left.kind)") }
                return .bool(text.contains(part))
            case .array(let items): return .bool(items.contains { $0.equals(left) })
            case .object(let object):
                guard case .string(let key) = left else { return .bool(false) }
                return .bool(object[key] != nil)
            case .undefined, .none: return .bool(false)
            default: throw TemplateError("'in' needs a string, list or dict on the right, not a \(right.kind)")
            }
        case "<", ">", "<=", ">=":
            let order: Bool
            if case .string(let a) = left, case .string(let b) = right {
                order = symbol == "<" ? a < b : symbol == ">" ? a > b : symbol == "<=" ? a <= b : a >= b
            } else if let a = left.number, let b = right.number {
                order = symbol == "<" ? a < b : symbol == ">" ? a > b : symbol == "<=" ? a <= b : a >= b
            } else {
                throw TemplateError("cannot compare a \(left.kind) with a \(right.kind)")
            }
            return .bool(order)
        case "+":
            switch (left, right) {
            case (.string(let a), .string(let b)): return .string(a + b)
            case (.array(let a), .array(let b)): return .array(a + b)
            default: break
            }
        default: break
        }
        guard let a = left.number, let b = right.number else {
            throw TemplateError("cannot apply '\(symbol)' to a \(left.kind) and a \(right.kind)")
        }
        let integers: (Int, Int)? = if case .int(let x) = left, case .int(let y) = right { (x, y) } else { nil }
        switch symbol {
        case "+": if let (x, y) = integers { return .int(x &+ y) } else { return .double(a + b) }
        case "-": if let (x, y) = integers { return .int(x &- y) } else { return .double(a - b) }
        case "*": if let (x, y) = integers { return .int(x &* y) } else { return .double(a * b) }
        case "/":
            guard b != 0 else { throw TemplateError("division by zero") }
            return .double(a / b)
        case "//", "%":
            guard b != 0 else { throw TemplateError("division by zero") }
            if let (x, y) = integers {
                // Python's floor division and modulo (the sign of the divisor).
                let quotient = Int((Double(x) / Double(y)).rounded(.down)), remainder = x - quotient * y
                return .int(symbol == "//" ? quotient : remainder)
            }
            let quotient = (a / b).rounded(.down)
            return .double(symbol == "//" ? quotient : a - quotient * b)
        case "**": return integers.map { x, y in y >= 0 ? .int(Int(pow(Double(x), Double(y)))) : .double(pow(a, b)) } ?? .double(pow(a, b))
        default: throw TemplateError("the operator '\(symbol)' is not implemented")
        }
    }
}
