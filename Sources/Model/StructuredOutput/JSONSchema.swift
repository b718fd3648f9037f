import Foundation

/// A JSON Schema compiled for constrained decoding (``JSONRecognizer``): the subset OpenAI's
/// structured outputs use. `type` (one or a list), `properties`, `required`,
/// `additionalProperties` (false, true or a schema; absent means false, as strict mode has it),
/// `items`, `prefixItems`, `minItems`/`maxItems`, `enum`, `const`, `anyOf`, `oneOf` (when its
/// branches are shown to exclude one another), `$ref` to
/// `#/$defs/…` or `#/definitions/…` (recursion allowed when it can end), string
/// `minLength`/`maxLength` and `format` `date`, `date-time`, `uuid` (their shapes: digits and
/// dashes, not calendar checks). Keywords beside `enum`/`const` keep the values that satisfy
/// them; `type` beside `anyOf`/`oneOf` narrows each branch; other keywords beside those are
/// refused, as is a schema no value satisfies. Annotations (`title`, `description`, `default`, `examples`,
/// `$schema`, `$id`, `$comment`, `strict`) are ignored; any other keyword is refused, named with
/// its path, rather than silently not enforced.
public final class JSONSchema: Sendable {
    /// A node of the compiled schema.
    indirect enum Node: Sendable, Equatable {
        /// Any JSON value.
        case any
        case object(ObjectRule)
        case array(ArrayRule)
        case string(StringRule)
        case number(integer: Bool)
        case boolean
        case null
        /// Exactly one of these texts (`enum`, `const`: each value's ``JSONValue/compactText``).
        case literals([[UInt8]])
        /// Any one of these (`anyOf`, `oneOf`, a list of types).
        case choice([Node])
        /// The definition at this index of ``JSONSchema/definitions``.
        case reference(Int)
    }

    struct ObjectRule: Sendable, Equatable {
        /// A property: its name's UTF-8 bytes, and its schema.
        struct Property: Sendable, Equatable {
            var name: [UInt8]
            var node: Node
        }
        /// In the schema's order.
        var properties: [Property]
        var required: Set<[UInt8]>
        /// What other keys' values must be; nil: no other keys.
        var additional: Node?
    }

    struct ArrayRule: Sendable, Equatable {
        var prefix: [Node]
        /// Items after the prefix; nil: none.
        var items: Node?
        var minItems: Int
        var maxItems: Int
    }

    struct StringRule: Sendable, Equatable {
        var minLength = 0
        var maxLength = Int.max
        var format: StringFormat?
        /// Whether any string is allowed (no length or format rule): tokens of plain characters
        /// are then always allowed inside it, without walking them (``JSONConstraint``).
        var isFree: Bool { minLength == 0 && maxLength == .max && format == nil }
    }

    /// Fixed shapes of characters: `d` a digit, `h` a hexadecimal digit, anything else itself.
    enum StringFormat: Sendable, Equatable {
        case date, dateTime, uuid
        var shapes: [[UInt8]] {
            switch self {
            case .date: return [Array("dddd-dd-dd".utf8)]
            case .dateTime: return ["Z", "+dd:dd", "-dd:dd"].map { Array(("dddd-dd-ddTdd:dd:dd" + $0).utf8) }
            case .uuid: return [Array("hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh".utf8)]
            }
        }
    }

    let root: Node
    let definitions: [Node]

    /// The schema accepting any JSON object: `response_format` `{"type": "json_object"}`.
    public static let anyObject = JSONSchema(root: .object(ObjectRule(properties: [], required: [], additional: .any)), definitions: [])

    init(root: Node, definitions: [Node]) {
        self.root = root
        self.definitions = definitions
    }

    /// Most nodes a schema may compile to: a stated bound, so a huge schema is refused rather
    /// than exhausting memory.
    public static let nodeLimit = 10_000

    /// Compiles `schema`; throws a ``ModelError`` naming the keyword and its path for anything
    /// outside the subset, a `$ref` that does not resolve, a reference cycle that can never end
    /// (`{"$ref": "#"}` with nothing else), or a schema past ``nodeLimit``.
    public convenience init(_ schema: JSONValue) throws {
        var compiler = Compiler(document: schema)
        let root = try compiler.compile(schema, path: "#")
        try compiler.resolvePending()
        let definitions = compiler.definitions.map { $0! }
        try Compiler.requireTermination(root: root, definitions: definitions)
        try Compiler.requireExclusive(compiler.exclusive, definitions: definitions)
        self.init(root: root, definitions: definitions)
    }

    /// The definition behind a reference.
    func resolve(_ node: Node) -> Node {
        var node = node
        while case .reference(let index) = node { node = definitions[index] }
        return node
    }

    private struct Compiler {
        let document: JSONValue
        var definitions: [Node?] = []
        var referenced: [String: Int] = [:]
        var pending: [(index: Int, path: String, value: JSONValue)] = []
        /// Compiling the keywords beside `enum`/`const`, which follow JSON Schema's defaults.
        var lenientObjects = false
        /// Each `oneOf`, whose branches must be shown to exclude one another.
        var exclusive: [(path: String, branches: [Node])] = []
        var nodes = 0

        static let annotations: Set<String> = ["title", "description", "default", "examples", "$schema", "$id", "$comment", "strict",
                                               "$defs", "definitions"]
        static let typeNames: Set<String> = ["object", "array", "string", "number", "integer", "boolean", "null"]

        init(document: JSONValue) { self.document = document }

        mutating func compile(_ value: JSONValue, path: String) throws -> Node {
            nodes += 1
            guard nodes <= JSONSchema.nodeLimit else { throw ModelError("the JSON schema is larger than \(JSONSchema.nodeLimit) nodes") }
            if let flag = value.bool { return flag ? .any : .choice([]) }
            guard let object = value.object else { throw ModelError("\(path): a schema must be an object or a boolean") }
            let known: Set<String> = ["type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
                                      "maxItems", "enum", "const", "anyOf", "oneOf", "$ref", "minLength", "maxLength", "format"]
            for key in object.keys.sorted() where !known.contains(key) && !Self.annotations.contains(key) {
                throw ModelError("\(path): the keyword '\(key)' is not supported")
            }
            if let reference = object["$ref"] {
                guard object.keys.allSatisfy({ $0 == "$ref" || Self.annotations.contains($0) }) else {
                    throw ModelError("\(path): '$ref' beside other keywords is not supported")
                }
                guard let target = reference.string else { throw ModelError("\(path)/$ref: must be a string") }
                return .reference(try referenceIndex(target, path: path))
            }
            let literalKey = object["const"] != nil ? "const" : object["enum"] != nil ? "enum" : nil
            if let key = literalKey {
                var texts: [[UInt8]]
                if key == "const" {
                    texts = [Array(object["const"]!.compactText.utf8)]
                } else {
                    guard let list = object["enum"]!.array, !list.isEmpty else { throw ModelError("\(path)/enum: must be a non-empty array") }
                    texts = list.map { Array($0.compactText.utf8) }
                }
                // Keywords beside the values (`type`, `maxLength`, …) keep those values that satisfy them.
                let siblings = object.filter { !Self.annotations.contains($0.key) && $0.key != "const" && $0.key != "enum" }
                if !siblings.isEmpty {
                    // Read as JSON Schema reads them: an object without `additionalProperties` takes any keys.
                    lenientObjects = true
                    defer { lenientObjects = false }
                    let rule = try compile(.object(siblings), path: path)
                    guard !Self.refers(rule) else { throw ModelError("\(path): '\(key)' beside keywords that use '$ref' is not supported") }
                    texts = texts.filter { text in
                        var recognizer = JSONRecognizer(JSONSchema(root: rule, definitions: []))
                        return recognizer.read(text) && recognizer.isComplete
                    }
                    guard !texts.isEmpty else { throw ModelError("\(path)/\(key): no value satisfies the keywords beside it (\(siblings.keys.sorted().joined(separator: ", ")))") }
                }
                return .literals(texts)
            }
            for key in ["anyOf", "oneOf"] {
                guard let options = object[key] else { continue }
                guard let list = options.array, !list.isEmpty else { throw ModelError("\(path)/\(key): must be a non-empty array") }
                if let other = object.keys.sorted().first(where: { !Self.annotations.contains($0) && $0 != key && $0 != "type" }) {
                    throw ModelError("\(path): '\(other)' beside '\(key)' is not supported; state it in each branch")
                }
                var branches = try list.enumerated().map { try compile($1, path: "\(path)/\(key)/\($0)") }
                if object["type"] != nil {
                    // `type` beside the branches: each branch keeps only values of those types.
                    lenientObjects = true
                    defer { lenientObjects = false }
                    let typed = try compile(.object(object.filter { $0.key == "type" }), path: path)
                    branches = try branches.map { try Self.restrict($0, to: typed, path: path) }
                    if branches.allSatisfy({ $0 == .choice([]) || $0 == .literals([]) }) {
                        throw ModelError("\(path): no value satisfies it: its 'type' excludes every branch of '\(key)'")
                    }
                }
                // oneOf's "exactly one" is checked once every definition is compiled (requireExclusive).
                if key == "oneOf" { exclusive.append((path: "\(path)/oneOf", branches: branches)) }
                return .choice(branches)
            }
            var types: [String]
            switch object["type"] {
            case nil: types = Self.inferredTypes(object)
            case .string(let name)?: types = [name]
            case .array(let names)?:
                types = try names.map { name in
                    guard let text = name.string else { throw ModelError("\(path)/type: must be a type name or a list of them") }
                    return text
                }
            default: throw ModelError("\(path)/type: must be a type name or a list of them")
            }
            for name in types where !Self.typeNames.contains(name) { throw ModelError("\(path)/type: unknown type '\(name)'") }
            if types.isEmpty { return .any }
            let nodes = try types.map { try compile(type: $0, object, path: path) }
            return nodes.count == 1 ? nodes[0] : .choice(nodes)
        }

        /// A schema without `type`: the type its keywords imply, else any value.
        static func inferredTypes(_ object: [String: JSONValue]) -> [String] {
            if object["properties"] != nil || object["required"] != nil || object["additionalProperties"] != nil { return ["object"] }
            if object["items"] != nil || object["prefixItems"] != nil || object["minItems"] != nil || object["maxItems"] != nil { return ["array"] }
            if object["minLength"] != nil || object["maxLength"] != nil || object["format"] != nil { return ["string"] }
            return []
        }

        mutating func compile(type: String, _ object: [String: JSONValue], path: String) throws -> Node {
            switch type {
            case "object":
                var properties: [ObjectRule.Property] = []
                if let value = object["properties"] {
                    guard let members = value.object else { throw ModelError("\(path)/properties: must be an object") }
                    // A JSON object's keys carry no order here: the schema's names sorted, a stable choice.
                    for name in members.keys.sorted() {
                        properties.append(.init(name: Array(name.utf8), node: try compile(members[name]!, path: "\(path)/properties/\(name)")))
                    }
                }
                var required: Set<[UInt8]> = []
                if let value = object["required"] {
                    guard let names = value.array?.compactMap(\.string), names.count == value.array?.count else {
                        throw ModelError("\(path)/required: must be an array of property names")
                    }
                    for name in names where !properties.contains(where: { $0.name == Array(name.utf8) }) {
                        throw ModelError("\(path)/required: '\(name)' is not among the properties")
                    }
                    required = Set(names.map { Array($0.utf8) })
                }
                var additional: Node?
                switch object["additionalProperties"] {
                case nil: additional = lenientObjects ? .any : nil
                case .bool(false)?: additional = nil
                case .bool(true)?: additional = .any
                case let schema?: additional = try compile(schema, path: "\(path)/additionalProperties")
                }
                return .object(ObjectRule(properties: properties, required: required, additional: additional))
            case "array":
                var prefix: [Node] = []
                if let value = object["prefixItems"] {
                    guard let list = value.array else { throw ModelError("\(path)/prefixItems: must be an array of schemas") }
                    prefix = try list.enumerated().map { try compile($1, path: "\(path)/prefixItems/\($0)") }
                }
                var items: Node? = .any
                if let value = object["items"] {
                    items = value.bool == false ? nil : try compile(value, path: "\(path)/items")
                } else if !prefix.isEmpty {
                    items = .any
                }
                let minItems = try count(object, "minItems", path: path) ?? 0
                let maxItems = try count(object, "maxItems", path: path) ?? .max
                guard minItems <= maxItems else { throw ModelError("\(path): minItems \(minItems) is above maxItems \(maxItems)") }
                if items == nil, minItems > prefix.count {
                    throw ModelError("\(path): minItems \(minItems) needs more items than prefixItems allows (\(prefix.count))")
                }
                return .array(ArrayRule(prefix: prefix, items: items, minItems: minItems, maxItems: items == nil ? min(maxItems, prefix.count) : maxItems))
            case "string":
                var rule = StringRule()
                rule.minLength = try count(object, "minLength", path: path) ?? 0
                rule.maxLength = try count(object, "maxLength", path: path) ?? .max
                guard rule.minLength <= rule.maxLength else { throw ModelError("\(path): minLength \(rule.minLength) is above maxLength \(rule.maxLength)") }
                if let value = object["format"] {
                    switch value.string {
                    case "date"?: rule.format = .date
                    case "date-time"?: rule.format = .dateTime
                    case "uuid"?: rule.format = .uuid
                    default: throw ModelError("\(path)/format: '\(value.string ?? value.shortText)' is not supported (date, date-time, uuid)")
                    }
                }
                return .string(rule)
            case "number": return .number(integer: false)
            case "integer": return .number(integer: true)
            case "boolean": return .boolean
            default: return .null
            }
        }

        func count(_ object: [String: JSONValue], _ key: String, path: String) throws -> Int? {
            guard let value = object[key] else { return nil }
            guard let number = value.integer, number >= 0 else { throw ModelError("\(path)/\(key): must be an integer ≥ 0, got \(value.shortText)") }
            return number
        }

        /// `node` keeping only values `typed` (a type or a choice of types) matches.
        static func restrict(_ node: Node, to typed: Node, path: String) throws -> Node {
            let types: [Node] = if case .choice(let nodes) = typed { nodes } else { [typed] }
            switch node {
            case .any: return .choice(types)
            case .choice(let nodes): return .choice(try nodes.map { try restrict($0, to: typed, path: path) })
            case .reference: throw ModelError("\(path): 'type' beside a branch that is a '$ref' is not supported; state it in the definition")
            case .literals(let texts):
                return .literals(texts.filter { text in
                    types.contains { type in
                        var recognizer = JSONRecognizer(JSONSchema(root: type, definitions: []))
                        return recognizer.read(text) && recognizer.isComplete
                    }
                })
            case .number:
                if types.contains(.number(integer: false)) { return node }
                return types.contains(.number(integer: true)) ? .number(integer: true) : .choice([])
            case .object: return types.contains { if case .object = $0 { true } else { false } } ? node : .choice([])
            case .array: return types.contains { if case .array = $0 { true } else { false } } ? node : .choice([])
            case .string: return types.contains { if case .string = $0 { true } else { false } } ? node : .choice([])
            case .boolean, .null: return types.contains(node) ? node : .choice([])
            }
        }

        /// Whether `node` uses a definition (which may not be compiled yet).
        static func refers(_ node: Node) -> Bool {
            switch node {
            case .reference: return true
            case .choice(let nodes): return nodes.contains(where: refers)
            case .object(let rule): return rule.properties.contains { refers($0.node) } || rule.additional.map(refers) ?? false
            case .array(let rule): return rule.prefix.contains(where: refers) || rule.items.map(refers) ?? false
            default: return false
            }
        }

        /// The definition index of `target` (`#`, `#/$defs/name`, `#/definitions/name`), compiled later.
        mutating func referenceIndex(_ target: String, path: String) throws -> Int {
            if let index = referenced[target] { return index }
            var node: JSONValue? = document
            if target != "#" {
                guard target.hasPrefix("#/") else { throw ModelError("\(path)/$ref: only references inside the schema ('#/$defs/…') are supported, got '\(target)'") }
                for part in target.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
                    // A URI fragment: percent-encoded, then JSON Pointer's escapes.
                    let decoded = String(part).removingPercentEncoding ?? String(part)
                    let key = decoded.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                    node = node?.object?[key]
                }
            }
            guard let value = node else { throw ModelError("\(path)/$ref: '\(target)' does not resolve") }
            let index = definitions.count
            definitions.append(nil)
            referenced[target] = index
            pending.append((index, target, value))
            return index
        }

        mutating func resolvePending() throws {
            while let (index, path, value) = pending.popLast() { definitions[index] = try compile(value, path: path) }
        }

        /// Refuses a `oneOf` unless no value can match two of its branches: a recognizer that keeps
    /// every way open cannot count how many branches a whole value matched, but when the
    /// branches exclude one another "any of" and "exactly one of" are the same. Exclusion is
    /// shown, not assumed: different JSON types, literals the other branch refuses, a key one
    /// branch requires and the other forbids, a required property or prefix item that excludes,
    /// item counts or string lengths that cannot meet, different string formats.
    static func requireExclusive(_ oneOfs: [(path: String, branches: [Node])], definitions: [Node]) throws {
        let exclusion = Exclusion(definitions: definitions)
        for (path, branches) in oneOfs {
            for second in branches.indices {
                for first in 0..<second where !exclusion.excludes(branches[first], branches[second], depth: 0) {
                    throw ModelError("\(path): branches \(first) and \(second) may both match one value, and constrained decoding cannot "
                                     + "enforce \"exactly one\"; use anyOf, or make the branches exclusive (different types, a const "
                                     + "discriminator property, a key one requires and the other forbids)")
                }
            }
        }
    }

    /// Refuses definitions that can never produce a finite value (each way through them
        /// needs itself again), which would let decoding run forever.
        static func requireTermination(root: Node, definitions: [Node]) throws {
            // Fixed point: a definition terminates when some way through it uses only terminating ones.
            var terminates = [Bool](repeating: false, count: definitions.count)
            var changed = true
            func ends(_ node: Node) -> Bool {
                switch node {
                case .reference(let index): return terminates[index]
                case .choice(let nodes): return nodes.contains(where: ends)
                case .object(let rule): return rule.properties.filter { rule.required.contains($0.name) }.allSatisfy { ends($0.node) }
                case .array(let rule): return rule.prefix.prefix(rule.minItems).allSatisfy(ends)
                    && (rule.minItems <= rule.prefix.count || rule.items.map(ends) ?? false)
                default: return true
                }
            }
            while changed {
                changed = false
                for index in definitions.indices where !terminates[index] && ends(definitions[index]) {
                    terminates[index] = true
                    changed = true
                }
            }
            guard ends(root) else { throw ModelError("the JSON schema's $ref cycle can never end: no finite value matches it") }
        }
    }
}
