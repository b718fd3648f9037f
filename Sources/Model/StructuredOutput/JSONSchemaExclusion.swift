extension JSONSchema {
    /// Shows that two compiled schemas match no value in common, so that a `oneOf` of them can be
    /// recognized as an `anyOf`. A sufficient test, not a complete one: `false` means "not shown".
    struct Exclusion {
        let definitions: [Node]
        /// Deeper than this, references are not followed (a recursive schema's branches).
        static let maxDepth = 8

        /// The JSON kinds of value a node can match.
        struct Kinds: OptionSet {
            let rawValue: Int
            static let object = Kinds(rawValue: 1), array = Kinds(rawValue: 2), string = Kinds(rawValue: 4)
            static let integer = Kinds(rawValue: 8), fraction = Kinds(rawValue: 16), boolean = Kinds(rawValue: 32)
            static let null = Kinds(rawValue: 64)
            static let all: Kinds = [.object, .array, .string, .integer, .fraction, .boolean, .null]
        }

        func resolve(_ node: Node) -> Node {
            var node = node
            while case .reference(let index) = node { node = definitions[index] }
            return node
        }

        func kinds(_ node: Node, depth: Int) -> Kinds {
            switch resolve(node) {
            case .any: return .all
            case .object: return .object
            case .array: return .array
            case .string: return .string
            case .number(let integer): return integer ? .integer : [.integer, .fraction]
            case .boolean: return .boolean
            case .null: return .null
            case .literals(let texts): return Kinds(texts.map(Self.kind))
            case .choice(let nodes):
                return depth > Self.maxDepth ? .all : nodes.reduce(into: []) { $0.formUnion(kinds($1, depth: depth + 1)) }
            case .reference: return .all
            }
        }

        /// The kind of a literal's compact text, by its first byte (and a number's fraction or exponent).
        static func kind(_ text: [UInt8]) -> Kinds {
            switch text.first {
            case UInt8(ascii: "{"): return .object
            case UInt8(ascii: "["): return .array
            case UInt8(ascii: "\""): return .string
            case UInt8(ascii: "t"), UInt8(ascii: "f"): return .boolean
            case UInt8(ascii: "n"): return .null
            // Whole Doubles below 10¹⁵ are written as integers; above, with an exponent (a whole number still).
            default:
                if text.contains(UInt8(ascii: "e")) { return [.integer, .fraction] }
                return text.contains(UInt8(ascii: ".")) ? .fraction : .integer
            }
        }

        /// Whether no value matches both `a` and `b`.
        func excludes(_ a: Node, _ b: Node, depth: Int) -> Bool {
            guard depth <= Self.maxDepth else { return false }
            let (a, b) = (resolve(a), resolve(b))
            if kinds(a, depth: depth).isDisjoint(with: kinds(b, depth: depth)) { return true }
            switch (a, b) {
            case (.choice(let nodes), _): return nodes.allSatisfy { excludes($0, b, depth: depth + 1) }
            case (_, .choice(let nodes)): return nodes.allSatisfy { excludes(a, $0, depth: depth + 1) }
            // A literal is excluded by a schema that refuses its text: the recognizer decides.
            case (.literals(let texts), _): return texts.allSatisfy { !mayMatch(b, $0, depth: depth) }
            case (_, .literals(let texts)): return texts.allSatisfy { !mayMatch(a, $0, depth: depth) }
            case (.object(let x), .object(let y)): return excludes(x, y, depth: depth) || excludes(y, x, depth: depth)
            case (.array(let x), .array(let y)):
                if x.maxItems < y.minItems || y.maxItems < x.minItems { return true }
                // An item both arrays must have, at a position where their schemas exclude.
                let both = min(x.minItems, y.minItems)
                return (0..<both).contains { excludes(item(x, $0) ?? .any, item(y, $0) ?? .any, depth: depth + 1) }
            case (.string(let x), .string(let y)):
                if x.maxLength < y.minLength || y.maxLength < x.minLength { return true }
                if let first = x.format, let second = y.format { return first != second }
                return false
            default: return false
            }
        }

        /// `x` requires a key that `y` forbids, or both require a key whose values exclude.
        func excludes(_ x: ObjectRule, _ y: ObjectRule, depth: Int) -> Bool {
            x.properties.contains { property in
                guard x.required.contains(property.name) else { return false }
                guard let other = y.properties.first(where: { $0.name == property.name }) else { return y.additional == nil }
                return excludes(property.node, other.node, depth: depth + 1)
            }
        }

        func item(_ rule: ArrayRule, _ index: Int) -> Node? { index < rule.prefix.count ? rule.prefix[index] : rule.items }

        /// Whether the value written `text` may match `node`. The recognizer decides, except for a
        /// whole number written with an exponent: JSON Schema counts it as an integer, while the
        /// recognizer reads integers in digits only.
        func mayMatch(_ node: Node, _ text: [UInt8], depth: Int) -> Bool {
            if Self.kind(text) == [.integer, .fraction], kinds(node, depth: depth).contains(.integer) { return true }
            var recognizer = JSONRecognizer(JSONSchema(root: node, definitions: definitions))
            return recognizer.read(text) && recognizer.isComplete
        }
    }
}
