/// A JSON-like value a caller gives a chat template: a message, a tool, a tool call's arguments,
/// or an extra variable such as `enable_thinking`.
///
/// Objects keep their members in order, because templates write them out (`tool | tojson`) and
/// Python's dictionaries, which the templates were written against, keep insertion order. Build
/// one from JSON text with ``init(parsingJSON:)`` (order kept), from literals
/// (`["role": "user", "content": "Hi"]`, order kept), or with `Decodable` (members sorted by key:
/// Foundation's decoders do not report the order of a JSON object's keys).
public enum TemplateValue: Sendable, Equatable {
    /// JSON `null`, Python's `None`.
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    /// Members in the order the template sees them; a repeated key keeps its last value, in the
    /// place of its first (as a Python dictionary built from the pairs would).
    case object([(key: String, value: TemplateValue)])

    public static func == (left: TemplateValue, right: TemplateValue) -> Bool {
        switch (left, right) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.double(let a), .double(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    /// The member named `key` of an object (nil for a missing key or a value that is no object).
    public subscript(key: String) -> TemplateValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.key == key }?.value
    }
}

extension TemplateValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
    /// Members in the order written.
    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self = .object(elements.map { (key: $0.0, value: $0.1) })
    }
}

extension TemplateValue: Codable {
    private struct MemberKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Decodes any JSON value. An object's members come sorted by key, so that rendering does not
    /// depend on a decoder's hashing; use ``init(parsingJSON:)`` to keep the document's order.
    public init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: MemberKey.self) {
            self = .object(try object.allKeys.map(\.stringValue).sorted().map { key in
                (key: key, value: try object.decode(TemplateValue.self, forKey: MemberKey(stringValue: key)))
            })
            return
        }
        if var array = try? decoder.unkeyedContainer() {
            var items: [TemplateValue] = []
            while !array.isAtEnd { items.append(try array.decode(TemplateValue.self)) }
            self = .array(items)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let value = try? single.decode(Bool.self) { self = .bool(value) }
        else if let value = try? single.decode(Int.self) { self = .int(value) }
        else if let value = try? single.decode(Double.self) { self = .double(value) }
        else if let value = try? single.decode(String.self) { self = .string(value) }
        else {
            throw DecodingError.dataCorruptedError(in: single,
                                                   debugDescription: "expected a JSON value for a chat template")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var single = encoder.singleValueContainer()
            try single.encodeNil()
        case .bool(let value):
            var single = encoder.singleValueContainer()
            try single.encode(value)
        case .int(let value):
            var single = encoder.singleValueContainer()
            try single.encode(value)
        case .double(let value):
            var single = encoder.singleValueContainer()
            try single.encode(value)
        case .string(let value):
            var single = encoder.singleValueContainer()
            try single.encode(value)
        case .array(let items):
            var array = encoder.unkeyedContainer()
            for item in items { try array.encode(item) }
        case .object(let members):
            var object = encoder.container(keyedBy: MemberKey.self)
            for (key, value) in members { try object.encode(value, forKey: MemberKey(stringValue: key)) }
        }
    }
}
