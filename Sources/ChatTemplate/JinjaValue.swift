import Foundation

/// A value inside a chat template: what Jinja (as Hugging Face runs it) computes with.
indirect enum JinjaValue {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    /// A dictionary with its keys in insertion order (templates iterate over `items()`).
    case object(JinjaObject)
    /// A `namespace(...)`: the one mutable object, so a loop can carry state out.
    case namespace(JinjaNamespace)
    /// A built-in function or a bound method.
    case function(([JinjaValue], [String: JinjaValue]) throws -> JinjaValue)

    /// Jinja's truth: none, undefined, false, zero and empty collections are false.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let value): value
        case .int(let value): value != 0
        case .double(let value): value != 0
        case .string(let value): !value.isEmpty
        case .array(let values): !values.isEmpty
        case .object(let object): !object.keys.isEmpty
        case .namespace, .function: true
        }
    }

    var isUndefined: Bool { if case .undefined = self { true } else { false } }

    /// A short name of the kind of value, for error messages.
    var kind: String {
        switch self {
        case .undefined: "undefined"
        case .none: "none"
        case .bool: "boolean"
        case .int: "integer"
        case .double: "float"
        case .string: "string"
        case .array: "list"
        case .object: "dict"
        case .namespace: "namespace"
        case .function: "function"
        }
    }

    /// The name of the Python type behind the value, for messages worded as Python's.
    var pythonTypeName: String {
        switch self {
        case .undefined: "Undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .array: "list"
        case .object: "dict"
        case .namespace: "Namespace"
        case .function: "function"
        }
    }

    /// The text `{{ value }}` prints, as Python would print it.
    var printed: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let value): value ? "True" : "False"
        case .int(let value): String(value)
        case .double(let value): PythonString.float(value)
        case .string(let value): value
        case .array(let values): "[" + values.map(\.pythonRepresentation).joined(separator: ", ") + "]"
        case .object(let object):
            "{" + object.pairs.map { PythonString.representation($0.key) + ": " + $0.value.pythonRepresentation }
                .joined(separator: ", ") + "}"
        case .namespace: "<Namespace>"
        case .function: "<function>"
        }
    }

    /// Python's `repr`: strings quoted, the rest as printed.
    var pythonRepresentation: String {
        guard case .string(let text) = self else { return printed }
        return PythonString.representation(text)
    }

    /// Equality as Jinja compares: numbers by value, collections element by element.
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): true
        case (.bool(let a), .bool(let b)): a == b
        case (.string(let a), .string(let b)): PythonString.equal(a, b)
        case (.array(let a), .array(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.object(let a), .object(let b)): a.keys == b.keys && a.keys.allSatisfy { a[$0]!.equals(b[$0]!) }
        default:
            if let a = number, let b = other.number { a == b } else { false }
        }
    }

    /// The value as a number (booleans count as 0 and 1, as in Python).
    var number: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        case .bool(let value): value ? 1 : 0
        default: nil
        }
    }
}

extension JinjaValue {
    /// A caller's value as the template sees it: JSON null is Python's `None`, objects become
    /// dictionaries in their members' order.
    init(_ value: TemplateValue) {
        switch value {
        case .null: self = .none
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(number)
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .array(let items): self = .array(items.map(JinjaValue.init))
        case .object(let members): self = .object(JinjaObject(members.map { ($0.key, JinjaValue($0.value)) }))
        }
    }
}

/// A dictionary keeping its keys in insertion order.
final class JinjaObject {
    private(set) var keys: [String] = []
    private var values: [String: JinjaValue] = [:]

    init(_ pairs: [(String, JinjaValue)] = []) {
        for (key, value) in pairs { self[key] = value }
    }

    subscript(key: String) -> JinjaValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }

    var pairs: [(key: String, value: JinjaValue)] { keys.map { ($0, values[$0]!) } }
}

/// `namespace(...)`: attributes assignable from inside loops (`{% set ns.found = true %}`).
final class JinjaNamespace {
    var attributes: [String: JinjaValue] = [:]
    init(_ attributes: [String: JinjaValue]) { self.attributes = attributes }
}
