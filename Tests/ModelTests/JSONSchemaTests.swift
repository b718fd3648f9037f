import Foundation
import Kernels
import Model
import Tokenizer
import XCTest

/// Constrained decoding's grammar against a plain validator written from the JSON Schema
/// definitions (on parsed documents, not bytes): random schemas of the supported subset and
/// random documents, accepted by the recognizer exactly when valid; every valid document read
/// byte by byte stays a valid prefix; and answers decoded under the constraint from random
/// logits always parse and validate.
final class JSONSchemaTests: XCTestCase {
    // MARK: The reference: validation of a parsed document

    /// Whether `value` matches `schema` (the subset ``JSONSchema`` compiles; `root` for `$ref`).
    static func valid(_ value: JSONValue, _ schema: JSONValue, root: JSONValue) -> Bool {
        if let flag = schema.bool { return flag }
        guard let rule = schema.object else { return false }
        if let reference = rule["$ref"]?.string {
            var target: JSONValue? = root
            if reference != "#" { for part in reference.dropFirst(2).split(separator: "/") { target = target?.object?[String(part)] } }
            return target.map { valid(value, $0, root: root) } ?? false
        }
        if let constant = rule["const"] { return value.compactText == constant.compactText }
        if let options = rule["enum"]?.array { return options.contains { $0.compactText == value.compactText } }
        if let options = rule["anyOf"]?.array { return options.contains { valid(value, $0, root: root) } }
        if let options = rule["oneOf"]?.array { return options.filter { valid(value, $0, root: root) }.count == 1 }
        let types = rule["type"].map { $0.string.map { [$0] } ?? ($0.array ?? []).compactMap(\.string) }
        func typeMatches(_ name: String) -> Bool {
            switch (name, value) {
            case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null), ("number", .number): return true
            case ("integer", .number(let d)): return d == d.rounded()
            default: return false
            }
        }
        if let types, !types.contains(where: typeMatches) { return false }
        switch value {
        case .object(let members):
            let properties = rule["properties"]?.object ?? [:]
            for name in rule["required"]?.array?.compactMap(\.string) ?? [] where members[name] == nil { return false }
            for (name, member) in members {
                if let property = properties[name] {
                    if !valid(member, property, root: root) { return false }
                } else {
                    let additional = rule["additionalProperties"] ?? .bool(false)
                    if !valid(member, additional, root: root) { return false }
                }
            }
        case .array(let items):
            let prefix = rule["prefixItems"]?.array ?? []
            if let minimum = rule["minItems"]?.integer, items.count < minimum { return false }
            if let maximum = rule["maxItems"]?.integer, items.count > maximum { return false }
            for (index, item) in items.enumerated() {
                let itemSchema = index < prefix.count ? prefix[index] : (rule["items"] ?? .bool(true))
                if !valid(item, itemSchema, root: root) { return false }
            }
        case .string(let text):
            let length = text.unicodeScalars.count
            if let minimum = rule["minLength"]?.integer, length < minimum { return false }
            if let maximum = rule["maxLength"]?.integer, length > maximum { return false }
            if let format = rule["format"]?.string {
                let shapes: [String] = switch format {
                case "date": ["dddd-dd-dd"]
                case "date-time": ["Z", "+dd:dd", "-dd:dd"].map { "dddd-dd-ddTdd:dd:dd" + $0 }
                default: ["hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh"]
                }
                let matchesShape = { (shape: String) in
                    shape.count == text.count && zip(shape, text).allSatisfy { s, c in
                        s == "d" ? c.isASCII && c.isNumber : s == "h" ? c.isHexDigit : s == c
                    }
                }
                if !shapes.contains(where: matchesShape) { return false }
            }
        default: break
        }
        return true
    }

    /// Whether the recognizer reads all of `text` and finds it a whole document.
    static func recognizes(_ text: String, _ schema: JSONSchema) -> Bool {
        var recognizer = JSONRecognizer(schema)
        return recognizer.read(Array(text.utf8)) && recognizer.isComplete
    }

    // MARK: Random schemas and documents

    struct Random {
        var generator: SeededGenerator
        mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &generator) < p }
        mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
    }

    static let names = ["id", "name", "tags", "a", "ab", "abc", "kind", "value", "v2"]

    /// A random schema of the subset, `depth` levels deep at most.
    static func schema(_ random: inout Random, depth: Int) -> JSONValue {
        let kinds = depth == 0 ? ["string", "integer", "number", "boolean", "null", "enum", "const", "format"]
                               : ["object", "object", "array", "anyOf", "string", "integer", "enum", "types"]
        switch random.pick(kinds) {
        case "object":
            var properties: [String: JSONValue] = [:]
            for name in names.shuffled(using: &random.generator).prefix(random.int(0...3)) { properties[name] = schema(&random, depth: depth - 1) }
            let required = properties.keys.sorted().filter { _ in random.chance(0.6) }
            var rule: [String: JSONValue] = ["type": .string("object"), "properties": .object(properties), "required": .array(required.map { .string($0) })]
            if random.chance(0.3) { rule["additionalProperties"] = random.chance(0.5) ? .bool(true) : schema(&random, depth: 0) }
            return .object(rule)
        case "array":
            var rule: [String: JSONValue] = ["type": .string("array"), "items": schema(&random, depth: depth - 1)]
            if random.chance(0.3) { rule["prefixItems"] = .array([schema(&random, depth: 0)]) }
            let minimum = random.int(0...2)
            if random.chance(0.5) { rule["minItems"] = .number(Double(minimum)) }
            if random.chance(0.5) { rule["maxItems"] = .number(Double(minimum + random.int(0...2))) }
            return .object(rule)
        case "anyOf": return .object(["anyOf": .array([schema(&random, depth: depth - 1), schema(&random, depth: depth - 1)])])
        case "types": return .object(["type": .array([.string("string"), .string("null")]), "maxLength": .number(5)])
        case "string":
            var rule: [String: JSONValue] = ["type": .string("string")]
            if random.chance(0.4) { rule["minLength"] = .number(Double(random.int(0...2))) }
            if random.chance(0.4) { rule["maxLength"] = .number(Double(random.int(2...6))) }
            return .object(rule)
        case "format": return .object(["type": .string("string"), "format": .string(random.pick(["date", "date-time", "uuid"]))])
        case "enum": return .object(["enum": .array([.string("x"), .number(3), .null, .bool(true)].shuffled(using: &random.generator).prefix(random.int(1...3)).map { $0 })])
        case "const": return .object(["const": random.pick([.string("k\"q"), .number(-1.5), .bool(false)])])
        default: return .object(["type": .string(random.pick(["integer", "number", "boolean", "null"]))])
        }
    }

    /// A random document: often close to `schema`, sometimes not.
    static func document(_ random: inout Random, _ schema: JSONValue, depth: Int = 0) -> JSONValue {
        let rule = schema.object ?? [:]
        if random.chance(0.08) || depth > 5 { return random.pick([.string("x"), .number(7), .number(2.5), .null, .bool(false), .array([]), .object([:])]) }
        if let constant = rule["const"] { return constant }
        if let options = rule["enum"]?.array { return random.chance(0.9) ? random.pick(options) : .string("y") }
        if let options = rule["anyOf"]?.array { return document(&random, random.pick(options), depth: depth + 1) }
        let type = rule["type"]?.string ?? rule["type"]?.array.map { random.pick($0).string ?? "null" } ?? "null"
        switch type {
        case "object":
            var members: [String: JSONValue] = [:]
            for (name, property) in rule["properties"]?.object ?? [:] where random.chance(0.75) { members[name] = document(&random, property, depth: depth + 1) }
            if random.chance(0.15) { members["extra"] = document(&random, rule["additionalProperties"] ?? .object([:]), depth: depth + 1) }
            return .object(members)
        case "array":
            let prefix = rule["prefixItems"]?.array ?? []
            return .array((0..<random.int(0...4)).map { index in
                document(&random, index < prefix.count ? prefix[index] : (rule["items"] ?? .object([:])), depth: depth + 1)
            })
        case "string":
            switch rule["format"]?.string {
            case "date"?: return .string(random.chance(0.8) ? "2026-12-07" : "2026-1-7")
            case "date-time"?: return .string(random.pick(["2026-12-07T10:57:00Z", "2026-12-07T10:57:00+01:00", "2026-12-07 10:57"]))
            case "uuid"?: return .string(random.chance(0.8) ? "123e4567-e89b-12d3-a456-426614174000" : "123e4567")
            default: return .string(random.pick(["", "a", "hé", "abcdef", "tab\there", "quote\"", "long string here"]))
            }
        case "integer": return .number(random.chance(0.8) ? Double(random.int(-20...20)) : 1.5)
        case "number": return .number(random.pick([0, -3, 2.25, 1e-3, 12345]))
        case "boolean": return .bool(random.chance(0.5))
        default: return .null
        }
    }

    /// `value` as text, compact or pretty (whitespace the recognizer must take).
    static func text(_ value: JSONValue, pretty: Bool) -> String {
        guard pretty else { return value.compactText }
        switch value {
        case .array(let items): return items.isEmpty ? "[]" : "[\n  " + items.map { text($0, pretty: true) }.joined(separator: ",\n  ") + "\n]"
        case .object(let members):
            return members.isEmpty ? "{ }" : "{\n  " + members.keys.sorted().map { JSONValue.quoted($0) + ": " + text(members[$0]!, pretty: true) }.joined(separator: ",\n  ") + "\n}"
        default: return value.compactText
        }
    }

    func testRandomDocumentsAreRecognizedExactlyWhenValid() throws {
        var random = Random(generator: SeededGenerator(seed: 2026))
        var validCount = 0, invalidCount = 0
        for round in 0..<400 {
            let schemaValue = Self.schema(&random, depth: 3)
            let schema = try JSONSchema(schemaValue)
            for _ in 0..<12 {
                let document = Self.document(&random, schemaValue)
                let expected = Self.valid(document, schemaValue, root: schemaValue)
                for pretty in [false, true] {
                    let text = Self.text(document, pretty: pretty)
                    XCTAssertEqual(Self.recognizes(text, schema), expected, "round \(round): \(text) against \(schemaValue.compactText)")
                }
                if expected { validCount += 1 } else { invalidCount += 1 }
            }
        }
        // Both sides are exercised.
        XCTAssertGreaterThan(validCount, 1_000)
        XCTAssertGreaterThan(invalidCount, 1_000)
    }

    func testHandWrittenCases() throws {
        let person = try JSONSchema(try JSONValue(parsing: Data(#"""
            {"type": "object", "properties": {"name": {"type": "string", "maxLength": 4}, "age": {"type": "integer"},
             "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}}, "required": ["name"], "additionalProperties": false}
            """#.utf8)))
        for (text, expected) in [(#"{"name":"Ann"}"#, true), (#"{"name":"Annabel"}"#, false), (#"{"age":3}"#, false),
                                 (#"{"name":"A","age":3.5}"#, false), (#"{"name":"A","age":-0}"#, true), (#"{"name":"A","age":012}"#, false),
                                 (#"{"name":"A","tags":["x","y","z"]}"#, false), (#"{"name":"A","tags":["x",]}"#, false),
                                 (#"{"name":"A","name":"B"}"#, false), (#"{"name":"A","other":1}"#, false),
                                 (#"{"name":"\u00e9\n"}"#, true), ("{\"name\":\"a\tb\"}", false), (#"{"name":"A"} "#, false)] {
            XCTAssertEqual(Self.recognizes(text, person), expected, text)
        }
        // A recursive tree through $defs.
        let tree = try JSONSchema(try JSONValue(parsing: Data(##"""
            {"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
             "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["v"]}}}
            """##.utf8)))
        XCTAssertTrue(Self.recognizes(#"{"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]}"#, tree))
        XCTAssertFalse(Self.recognizes(#"{"v":1,"kids":[{"w":2}]}"#, tree))
        // A composite const is written compactly, keys sorted.
        let constant = try JSONSchema(try JSONValue(parsing: Data(#"{"const": {"b": [1, true], "a": null}}"#.utf8)))
        XCTAssertTrue(Self.recognizes(#"{"a":null,"b":[1,true]}"#, constant))
        XCTAssertFalse(Self.recognizes(#"{"b":[1,true],"a":null}"#, constant))
        // Whitespace is bounded.
        XCTAssertTrue(Self.recognizes(String(repeating: " ", count: JSONRecognizer.maxWhitespace) + "{}", .anyObject))
        XCTAssertFalse(Self.recognizes(String(repeating: " ", count: JSONRecognizer.maxWhitespace + 1) + "{}", .anyObject))
    }

    /// Cases the differential test against Python's jsonschema found (scripts/schema_differential.py).
    func testCasesFoundAgainstJSONSchema() throws {
        func schema(_ text: String) throws -> JSONSchema { try JSONSchema(try JSONValue(parsing: Data(text.utf8))) }
        // Keywords beside enum/const keep only the values that satisfy them.
        let typedEnum = try schema(#"{"type": "string", "enum": ["a", null, "abcdef"], "maxLength": 3}"#)
        XCTAssertTrue(Self.recognizes(#""a""#, typedEnum))
        XCTAssertFalse(Self.recognizes("null", typedEnum))
        XCTAssertFalse(Self.recognizes(#""abcdef""#, typedEnum))
        XCTAssertTrue(Self.recognizes(#"{"k":"v"}"#, try schema(#"{"enum": [{"k": "v"}], "type": "object"}"#)), "JSON Schema's object: any keys")
        XCTAssertThrowsError(try schema(#"{"type": "integer", "const": 1.5}"#)) { XCTAssertTrue("\($0)".contains("no value satisfies")) }
        XCTAssertThrowsError(try schema(#"{"maxLength": 2, "anyOf": [{"type": "string"}]}"#)) { XCTAssertTrue("\($0)".contains("'maxLength' beside 'anyOf'")) }
        // A surrogate pair written as escapes is one character.
        XCTAssertFalse(Self.recognizes(#""\ud83d\ude00""#, try schema(#"{"type": "string", "minLength": 2}"#)))
        let one = try schema(#"{"type": "string", "maxLength": 1}"#)
        XCTAssertTrue(Self.recognizes(#""\ud83d\ude00""#, one))
        XCTAssertFalse(Self.recognizes(#""\ud83d\n""#, one), "at maxLength only the low half may follow")
        // Keys with escapes: any key where any is allowed, a property's name in any spelling.
        XCTAssertTrue(Self.recognizes(#"{"\u00e9":1}"#, .anyObject))
        let quoted = try schema(#"{"type": "object", "properties": {"a\"b": {"type": "integer"}, "naïve": {}}, "required": ["a\"b"], "additionalProperties": false}"#)
        for text in [#"{"a\"b":1}"#, #"{"a\u0022b":1,"na\u00efve":true}"#, #"{"naïve":0,"a\"b":2}"#] { XCTAssertTrue(Self.recognizes(text, quoted), text) }
        for text in [#"{"a\u0023b":1}"#, #"{"a\"b":1,"na\u00eeve":0}"#, #"{"ab":1}"#] { XCTAssertFalse(Self.recognizes(text, quoted), text) }
        var recognizer = JSONRecognizer(quoted)
        XCTAssertFalse(recognizer.read(Array(#"{"a\u007"#.utf8)), "no name has a character U+0070…U+007F there: refused at once")
        // Many values, and alternatives that come back together, stay within the ways kept.
        let names = try schema(#"{"enum": ["# + (0..<100).map { "\"option_\($0)\"" }.joined(separator: ",") + "]}")
        XCTAssertTrue(Self.recognizes(#""option_99""#, names))
        let union = try schema(#"{"anyOf": [{"type": "object", "properties": {"kind": {"const": "a"}, "xs": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "number"}]}}}, "required": ["kind", "xs"], "additionalProperties": false}, {"type": "object", "properties": {"kind": {"const": "b"}, "xs": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "number"}]}}}, "required": ["kind", "xs"], "additionalProperties": false}]}"#)
        XCTAssertTrue(Self.recognizes(#"{"xs":[1,2,3,4,5,6,7,8,9,10,11,12],"kind":"b"}"#, union))
        // A percent-encoded reference.
        XCTAssertTrue(Self.recognizes("1", try schema(##"{"$ref": "#/$defs/a%20b", "$defs": {"a b": {"type": "integer"}}}"##)))
    }

    func testUnsupportedOrImpossibleSchemasAreNamed() {
        for (schema, needle) in [(#"{"type": "string", "pattern": "a+"}"#, "'pattern'"), (#"{"type": "object", "required": ["x"]}"#, "'x'"),
                                 (##"{"$ref": "#/$defs/missing"}"##, "does not resolve"), (##"{"$ref": "#"}"##, "can never end"),
                                 (#"{"type": "string", "format": "email"}"#, "email"), (#"{"type": "wizard"}"#, "wizard"),
                                 (#"{"type": "array", "minItems": 3, "maxItems": 1}"#, "minItems")] {
            XCTAssertThrowsError(try JSONSchema(try JSONValue(parsing: Data(schema.utf8))), schema) {
                XCTAssertTrue("\($0)".contains(needle), "\(schema): \($0)")
            }
        }
    }

    /// `oneOf` is taken only when no value can match two branches (then "any of" is "exactly one
    /// of"); otherwise it is refused, naming the two branches, rather than enforced as `anyOf`.
    func testOneOfNeedsBranchesThatExcludeEachOther() throws {
        let exclusive = [
            #"{"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}"#,
            #"{"oneOf": [{"type": "integer"}, {"const": 1.5}]}"#,
            #"{"oneOf": [{"enum": ["a", "b"]}, {"type": "string", "minLength": 2}]}"#,
            #"{"oneOf": [{"type": "string", "maxLength": 3}, {"type": "string", "minLength": 4}]}"#,
            #"{"oneOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "uuid"}]}"#,
            // A discriminated union (pydantic's shape): a required const property tells them apart.
            #"{"oneOf": [{"type": "object", "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}}, "required": ["kind"]},"#
                + #" {"type": "object", "properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}}, "required": ["kind"]}]}"#,
            // A key one branch requires and the other forbids.
            #"{"oneOf": [{"type": "object", "properties": {"a": {}}, "required": ["a"], "additionalProperties": false},"#
                + #" {"type": "object", "properties": {"b": {}}, "required": ["b"], "additionalProperties": false}]}"#,
            #"{"oneOf": [{"type": "array", "maxItems": 1}, {"type": "array", "prefixItems": [{}, {}], "minItems": 2}]}"#,
        ]
        for text in exclusive {
            XCTAssertNoThrow(try JSONSchema(try JSONValue(parsing: Data(text.utf8))), text)
        }
        let discriminated = try JSONSchema(try JSONValue(parsing: Data(exclusive[5].utf8)))
        XCTAssertTrue(Self.recognizes(#"{"kind":"dog","good":true}"#, discriminated))
        XCTAssertFalse(Self.recognizes(#"{"kind":"dog","lives":9}"#, discriminated))
        let overlapping = [
            #"{"oneOf": [{"type": "integer"}, {"type": "number"}]}"#,
            #"{"oneOf": [{"type": "string"}, {"enum": ["x", 1]}]}"#,
            #"{"oneOf": [{"type": "object", "properties": {"a": {}}, "additionalProperties": true}, {"type": "object", "additionalProperties": true}]}"#,
            #"{"oneOf": [{"type": "integer"}, {"const": 1e20}]}"#,  // 1e20 is an integer to JSON Schema
            #"{"oneOf": [{}, {"type": "null"}]}"#,
        ]
        for text in overlapping {
            XCTAssertThrowsError(try JSONSchema(try JSONValue(parsing: Data(text.utf8))), text) {
                XCTAssertTrue("\($0)".contains("#/oneOf: branches 0 and 1 may both match"), "\(text): \($0)")
            }
        }
    }

    /// Decoding under the constraint from random logits, with a real tokenizer: every answer is a
    /// whole document that parses and validates, whatever the model would have said.
    func testConstrainedAnswersAlwaysValidate() throws {
        let text = String(repeating: #"{"name": "Ann", "age": 31, "tags": ["a", "b"], "ok": true, "v": null} the cat 2026-12-07 "#, count: 20)
        let tokenizer = try Array(text.utf8).withUnsafeBufferPointer {
            try BPETrainer.train(bytes: $0, options: BPETrainingOptions(vocabSize: 400, specialTokens: ["<|endoftext|>"]))
        }
        var random = Random(generator: SeededGenerator(seed: 7))
        let vocabulary = tokenizer.vocabularySize
        var completed = 0
        for round in 0..<40 {
            let schemaValue = Self.schema(&random, depth: 2)
            let schema = try JSONSchema(schemaValue)
            let options = GenerationOptions(maxTokens: 400, temperature: 1, seed: UInt64(round), responseSchema: schema)
            var state = try DecodeState(prompt: [0], options: options, vocabularySize: vocabulary, tokenizer: tokenizer)
            var answer = "", finish: DecodeState.Finish?
            var logits = [Float](repeating: 0, count: vocabulary)
            while finish == nil {
                for index in logits.indices { logits[index] = Float.random(in: -2...2, using: &random.generator) }
                let step = try logits.withUnsafeBufferPointer { try state.advance($0) }
                answer += step.text
                finish = step.finish
            }
            guard finish == .documentComplete || finish == .stopToken(tokenizer.stopTokens.first ?? -1) else {
                XCTAssertEqual(finish, .maxTokens, "round \(round)")
                continue  // random logits may wander (a long string) until the budget ends
            }
            let parsed = try JSONValue(parsing: Data(answer.utf8))
            XCTAssertTrue(Self.valid(parsed, schemaValue, root: schemaValue), "round \(round): \(answer) against \(schemaValue.compactText)")
            completed += 1
        }
        XCTAssertGreaterThan(completed, 25, "most answers end as whole documents within the budget")
    }
}
