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
            // Overflow-checked: the span of two 64-bit bounds, divided by the step, counts the items.
            let (span, spanOverflow) = stop.subtractingReportingOverflow(start)
            let (count, countOverflow) = span.dividedReportingOverflow(by: step == 0 ? 1 : step)
            guard step != 0, !spanOverflow, !countOverflow, count < 1 << 20 else { throw TemplateError("range() arguments are not usable") }
            return .array(Swift.stride(from: start, to: stop, by: step).map { .int($0) })
        },
        "raise_exception": .function { positional, _ in
            let message = positional.first?.printed ?? ""
            throw TemplateError("the template raised an exception: \(message)", raised: message)
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

    /// The items of a list, the code points of a string, the keys of a dictionary (an undefined
    /// value iterates as empty, as Jinja's `Undefined` does).
    static func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .array(let items): return items
        case .string(let text): return text.unicodeScalars.map { .string(String($0)) }
        case .object(let object): return object.keys.map { .string($0) }
        case .undefined: return []
        default: throw TemplateError("a \(value.kind) is not iterable")
        }
    }

    /// `base.name` as Jinja's sandbox reads it: a Python attribute (a method) first, then a
    /// dictionary key; what is neither is undefined. Only an undefined base is an error.
    static func attribute(_ base: JinjaValue, _ name: String) throws -> JinjaValue {
        switch base {
        case .object(let object): return method(base, name) ?? object[name] ?? .undefined
        case .namespace(let namespace): return namespace.attributes[name] ?? .undefined
        case .undefined: throw TemplateError("cannot read the attribute '\(name)' of an undefined value")
        default: return method(base, name) ?? .undefined
        }
    }

    /// `base[index]` as Jinja's sandbox reads it: the item first, then (for a string index) the
    /// attribute; a missing item or an index out of range is undefined. Only an undefined base is
    /// an error.
    static func element(_ base: JinjaValue, _ index: JinjaValue) throws -> JinjaValue {
        let position: Int? = switch index {
        case .int(let number): number
        case .bool(let flag): flag ? 1 : 0
        default: nil
        }
        switch base {
        case .array(let items):
            guard let position else { break }
            let resolved = position < 0 ? items.count + position : position
            return items.indices.contains(resolved) ? items[resolved] : .undefined
        case .string(let text):
            guard let position else { break }
            let scalars = PythonString.scalars(text)
            let resolved = position < 0 ? scalars.count + position : position
            return scalars.indices.contains(resolved) ? .string(String(scalars[resolved])) : .undefined
        case .object(let object):
            if case .string(let key) = index, let value = object[key] { return value }
        case .undefined:
            throw TemplateError("cannot subscript an undefined value with \(index.pythonRepresentation)")
        default: break
        }
        if case .string(let name) = index { return try attribute(base, name) }
        return .undefined
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
        case .string(let text): (items, isString) = (text.unicodeScalars.map { .string(String($0)) }, true)
        case .undefined: throw TemplateError("cannot slice an undefined value")
        default: return .undefined  // Python's TypeError, which Jinja turns into undefined
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

    // MARK: Filters

    static func filter(_ name: String, _ value: JinjaValue, _ arguments: [JinjaValue], _ keywords: [String: JinjaValue]) throws -> JinjaValue {
        switch name {
        case "trim":
            // Jinja's `str(value).strip(chars)`: any value, an undefined one as "".
            let characters: String? = if case .string(let set) = arguments.first ?? keywords["chars"] ?? .none { set } else { nil }
            return .string(PythonString.strip(value.printed, characters, leading: true, trailing: true))
        case "upper", "lower", "title", "capitalize":
            guard let bound = method(value, name), case .function(let body) = bound else { throw TemplateError("filter '\(name)' needs a string") }
            return try body([], [:])
        case "length", "count":
            switch value {
            case .string(let text): return .int(text.unicodeScalars.count)
            case .array(let items): return .int(items.count)
            case .object(let object): return .int(object.keys.count)
            case .undefined: return .int(0)
            default: throw TemplateError("a \(value.kind) has no length")
            }
        case "first": return try iterate(value).first ?? .undefined
        case "last": return try iterate(value).last ?? .undefined
        case "reverse":
            if case .string(let text) = value { return .string(PythonString.string(text.unicodeScalars.reversed())) }
            return .array(try iterate(value).reversed())
        case "list": return .array(try iterate(value))
        case "string": return .string(value.printed)
        case "int":
            if case .string(let text) = value { return .int(Int(text.trimmingCharacters(in: .whitespaces)) ?? 0) }
            if case .int(let exact) = value { return .int(exact) }
            guard let number = value.number else { return .int(0) }
            // Python truncates toward zero; a value past 64 bits (or inf, nan) is an error, not a trap.
            guard let exact = Int(exactly: number.rounded(.towardZero)) else { throw TemplateError("cannot convert \(number) to an integer") }
            return .int(exact)
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
            return .string(try JinjaJSON(arguments, keywords).write(value))
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

    // MARK: Tests

    static func test(_ name: String, _ value: JinjaValue, _ arguments: [JinjaValue]) throws -> Bool {
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "string": if case .string = value { return true } else { return false }
        case "number": return value.number != nil  // Python's bool is a Number too
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "mapping": if case .object = value { return true } else { return false }
        case "sequence", "iterable":
            // Jinja's `Undefined` has a length and iterates (as empty), so it passes both.
            switch value {
            case .array, .string, .object, .undefined: return true
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
                return .bool(PythonString.contains(text, part))
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
                let (less, equal) = (PythonString.less(a, b), PythonString.equal(a, b))
                order = symbol == "<" ? less : symbol == ">" ? !less && !equal : symbol == "<=" ? less || equal : !less
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
            // Python's message, so a template's error reads the same from either.
            case (.string, _) where !right.isUndefined, (.array, _) where !right.isUndefined:
                throw TemplateError("can only concatenate \(left.pythonTypeName) (not \"\(right.pythonTypeName)\") to \(left.pythonTypeName)")
            default: break
            }
        case "*":
            // Repetition: `'-' * 20`, `[x] * 3`.
            switch (left, right) {
            case (.string(let text), .int(let count)), (.int(let count), .string(let text)):
                guard count <= 0 || text.utf8.count <= JinjaInterpreter.maximumOutput / count else { break }
                return .string(String(repeating: text, count: max(0, count)))
            case (.array(let items), .int(let count)), (.int(let count), .array(let items)):
                guard count <= 0 || items.count <= JinjaInterpreter.maximumOutput / 8 / count else { break }
                return .array(Array([[JinjaValue]](repeating: items, count: max(0, count)).joined()))
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
                // Python's floor division and modulo (the sign of the divisor), in integers.
                let (truncated, overflow) = x.dividedReportingOverflow(by: y)
                guard !overflow else { throw TemplateError("integer overflow in \(x) \(symbol) \(y)") }
                let remainder = x - truncated * y
                let quotient = remainder != 0 && (remainder < 0) != (y < 0) ? truncated - 1 : truncated
                return .int(symbol == "//" ? quotient : x &- quotient &* y)
            }
            let quotient = (a / b).rounded(.down)
            return .double(symbol == "//" ? quotient : a - quotient * b)
        case "**":
            guard let (x, y) = integers, y >= 0 else { return .double(pow(a, b)) }
            return .int(try integerPower(x, y))
        default: throw TemplateError("the operator '\(symbol)' is not implemented")
        }
    }

    /// x ** y for y ≥ 0 in exact integers (Python's), by squaring; a result past 64 bits is an
    /// error rather than a wrong number (Python's integers have no bound, ours do).
    static func integerPower(_ x: Int, _ y: Int) throws -> Int {
        var (result, base, exponent) = (1, x, y)
        while exponent > 0 {
            if exponent & 1 == 1 {
                let (product, overflow) = result.multipliedReportingOverflow(by: base)
                guard !overflow else { throw TemplateError("integer overflow in \(x) ** \(y)") }
                result = product
            }
            exponent >>= 1
            if exponent > 0 {
                let (square, overflow) = base.multipliedReportingOverflow(by: base)
                guard !overflow else { throw TemplateError("integer overflow in \(x) ** \(y)") }
                base = square
            }
        }
        return result
    }
}
