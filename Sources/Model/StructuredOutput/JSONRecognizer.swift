/// Reads JSON text byte by byte against a ``JSONSchema`` and says whether what it has read is a
/// prefix of a valid document: a pushdown recognizer whose stack follows the document's nesting.
/// Where the schema allows several things at once (`anyOf`, `enum`, a list of types) it keeps
/// every way still possible, so `accepts` is exact: a byte is refused as soon as no valid
/// document starts with the text.
///
/// Whitespace between tokens is allowed, at most ``maxWhitespace`` bytes in a row, and numbers
/// take at most ``maxDigits`` digits before and after the point (so a model cannot pad or count
/// forever); inside strings, escapes are allowed and control characters are not.
public struct JSONRecognizer: Sendable {
    public static let maxWhitespace = 24
    /// Most digits in a number's integer part and in its fraction, and in its exponent (two: every
    /// such number is a finite Double).
    public static let maxDigits = 16, maxExponentDigits = 2
    /// Most ways kept at once; schemas whose alternatives share long prefixes stay far below it.
    static let maxWays = 64

    let schema: JSONSchema
    /// Each possible reading of the text so far.
    private(set) var ways: [Way]

    /// The text before any byte: a document matching `schema` is expected.
    public init(_ schema: JSONSchema) {
        self.schema = schema
        ways = [Way(frames: [.value(schema.root)], whitespace: 0)]
    }

    /// Whether the text read so far is a prefix of a valid document.
    public var isAlive: Bool { !ways.isEmpty }

    /// Whether the text read so far is a whole valid document.
    public var isComplete: Bool {
        ways.contains { way in
            way.frames.isEmpty || (way.frames.count == 1 && { if case .number(_, let state, _) = way.frames[0] { state.canEnd } else { false } }())
        }
    }

    /// Whether every byte of `bytes` keeps the text a valid prefix (then they are read).
    @discardableResult
    public mutating func read(_ bytes: some Sequence<UInt8>) -> Bool {
        for byte in bytes {
            read(byte)
            if ways.isEmpty { return false }
        }
        return true
    }

    /// Reads one byte (``isAlive`` says whether the text is still a valid prefix).
    public mutating func read(_ byte: UInt8) {
        var next: [Way] = []
        for way in ways {
            Self.step(way, byte, schema: schema, into: &next)
            if next.count >= Self.maxWays { break }
        }
        ways = next
    }

    /// When every way is inside a string without a format (or a key any name may take), outside
    /// an escape and a character: how many more characters it takes (`Int.max`: any number).
    /// Tokens of plain characters up to that many keep the text valid without being read.
    var plainRoom: Int? {
        guard !ways.isEmpty else { return nil }
        var room = Int.max
        for way in ways {
            switch way.frames.last {
            case .string(let rule, let progress)? where rule.format == nil && progress.escape < 0 && progress.utf8.remaining == 0:
                room = min(room, rule.maxLength == .max ? .max : rule.maxLength - progress.length)
            case .key(_, _, _, let free, let utf8)? where free && utf8.remaining == 0:
                continue
            default:
                return nil
            }
        }
        return room
    }

    // MARK: The machine

    /// One reading: a stack of frames (innermost last) and the whitespace run before the next byte.
    struct Way: Sendable {
        var frames: [Frame]
        var whitespace: Int
    }

    enum Frame: Sendable {
        /// A value of this node is expected next.
        case value(JSONSchema.Node)
        /// Inside an object: which keys have been seen, where we are.
        case object(JSONSchema.ObjectRule, seen: Set<[UInt8]>, phase: ObjectPhase)
        /// Inside a key: its bytes so far; `free` when any key is allowed.
        case key(JSONSchema.ObjectRule, seen: Set<[UInt8]>, typed: [UInt8], free: Bool, utf8: UTF8Progress)
        /// Inside an array: items so far, and whether one just ended.
        case array(JSONSchema.ArrayRule, count: Int, afterItem: Bool)
        /// Inside a string (after its opening quote).
        case string(JSONSchema.StringRule, StringProgress)
        /// Inside a number.
        /// Inside a number: where in its grammar, and the digits of the current part so far.
        case number(integer: Bool, NumberState, digits: Int)
        /// Matching fixed text (`true`, an enum value, …) from byte `index` of one of `texts`.
        case literal(text: [UInt8], index: Int)
    }

    enum ObjectPhase: Sendable {
        /// After `{`: a key or `}`.
        case start
        /// After a key: `:`.
        case colon(key: [UInt8])
        /// After a value: `,` or `}`.
        case afterValue
        /// After `,`: a key.
        case key
    }

    struct StringProgress: Sendable {
        /// Characters so far (UTF-8 continuation bytes do not count).
        var length = 0
        /// The UTF-8 character being read: continuation bytes still to come, and the range the next
        /// one must fall in (Unicode's table of well-formed sequences), so the text always decodes.
        var utf8 = UTF8Progress()
        /// Bytes left of an escape: -1 none, 0 after `\`, 1…4 hex digits of `\u` to come.
        var escape = -1
        /// The format shapes still matching, and the position in them.
        var shapes: [[UInt8]] = []
    }

    /// Where a UTF-8 sequence stands: `remaining` continuation bytes, the next in `low...high`.
    struct UTF8Progress: Sendable, Equatable {
        var remaining = 0
        var low: UInt8 = 0x80, high: UInt8 = 0xBF

        /// Reads `byte` (≥ 0x20, not a quote or backslash when `remaining` is 0); false when the
        /// bytes would not be well-formed UTF-8.
        mutating func read(_ byte: UInt8) -> Bool {
            if remaining > 0 {
                guard byte >= low && byte <= high else { return false }
                remaining -= 1
                (low, high) = (0x80, 0xBF)
                return true
            }
            switch byte {
            case 0x00...0x7F: return true
            case 0xC2...0xDF: remaining = 1
            case 0xE0: (remaining, low) = (2, 0xA0)
            case 0xE1...0xEC, 0xEE...0xEF: remaining = 2
            case 0xED: (remaining, high) = (2, 0x9F)
            case 0xF0: (remaining, low) = (3, 0x90)
            case 0xF1...0xF3: remaining = 3
            case 0xF4: (remaining, high) = (3, 0x8F)
            default: return false
            }
            return true
        }
    }

    enum NumberState: Sendable {
        case minus, zero, integer, dot, fraction, exponent, exponentSign, exponentDigits
        var canEnd: Bool { self == .zero || self == .integer || self == .fraction || self == .exponentDigits }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// The ways `way` continues with `byte`, appended to `out`. A value that ends just pops its
    /// frame: its parent (object or array) set its next phase when the value began.
    static func step(_ way: Way, _ byte: UInt8, schema: JSONSchema, into out: inout [Way]) {
        guard let top = way.frames.last else { return }  // a complete document takes nothing more
        var way = way
        way.frames.removeLast()
        switch top {
        case .value(let node):
            if isWhitespace(byte) { return takeWhitespace(way, top, into: &out) }
            way.whitespace = 0
            start(schema.resolve(node), byte, way, schema: schema, into: &out)

        case .literal(let text, let index):
            guard text[index] == byte else { return }
            if index + 1 == text.count { out.append(way) } else {
                way.frames.append(.literal(text: text, index: index + 1))
                out.append(way)
            }

        case .string(let rule, var progress):
            if progress.escape == 0 {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                     UInt8(ascii: "r"), UInt8(ascii: "t"):
                    progress.escape = -1
                case UInt8(ascii: "u"): progress.escape = 4
                default: return
                }
                if progress.escape == -1 { progress.length += 1 }
            } else if progress.escape > 0 {
                guard isHex(byte) else { return }
                progress.escape -= 1
                if progress.escape == 0 { progress.escape = -1; progress.length += 1 }
            } else if progress.utf8.remaining > 0 {
                guard progress.utf8.read(byte) else { return }
            } else if byte == UInt8(ascii: "\"") {
                guard progress.length >= rule.minLength, rule.format == nil || progress.shapes.contains(where: { $0.count == progress.length }) else { return }
                out.append(way)
                return
            } else if byte == UInt8(ascii: "\\") {
                guard rule.format == nil, progress.length < rule.maxLength else { return }
                progress.escape = 0
            } else {
                // A character starts (continuation bytes were taken above).
                guard byte >= 0x20, progress.length < rule.maxLength, progress.utf8.read(byte) else { return }
                if rule.format != nil {
                    progress.shapes = progress.shapes.filter { progress.length < $0.count && matches(shape: $0[progress.length], byte) }
                    guard !progress.shapes.isEmpty else { return }
                }
                progress.length += 1
            }
            way.frames.append(.string(rule, progress))
            out.append(way)

        case .number(let integer, let state, let digits):
            if let next = advance(state, byte, integer: integer) {
                // Digits of one part are bounded (a model may otherwise write digits for ever).
                let count = next == state ? digits + 1 : (isDigit(byte) ? 1 : 0)
                guard count <= (next == .exponentDigits ? maxExponentDigits : maxDigits) else { return }
                way.frames.append(.number(integer: integer, next, digits: count))
                out.append(way)
            } else if state.canEnd {
                // The byte ends the number: the value is done, and the byte belongs to what follows.
                step(way, byte, schema: schema, into: &out)
            }

        case .object(let rule, let seen, let phase):
            if isWhitespace(byte) { return takeWhitespace(way, top, into: &out) }
            way.whitespace = 0
            switch (phase, byte) {
            case (.start, UInt8(ascii: "\"")), (.key, UInt8(ascii: "\"")):
                guard hasKeysLeft(rule, seen) else { return }
                way.frames.append(top)
                way.frames.append(.key(rule, seen: seen, typed: [], free: rule.additional != nil, utf8: UTF8Progress()))
                out.append(way)
            case (.start, UInt8(ascii: "}")), (.afterValue, UInt8(ascii: "}")):
                guard rule.required.isSubset(of: seen) else { return }
                out.append(way)
            case (.afterValue, UInt8(ascii: ",")):
                guard hasKeysLeft(rule, seen) else { return }
                way.frames.append(.object(rule, seen: seen, phase: .key))
                out.append(way)
            case (.colon(let key), UInt8(ascii: ":")):
                let node = rule.properties.first(where: { $0.name == key })?.node ?? rule.additional ?? .choice([])
                way.frames.append(.object(rule, seen: seen.union([key]), phase: .afterValue))
                way.frames.append(.value(node))
                out.append(way)
            default: return
            }

        case .key(let rule, let seen, let typed, let free, var utf8):
            if byte == UInt8(ascii: "\""), utf8.remaining == 0 {
                let known = rule.properties.contains { $0.name == typed }
                guard !seen.contains(typed), known || rule.additional != nil else { return }
                guard case .object(_, _, _)? = way.frames.last else { return }
                way.frames.removeLast()
                way.frames.append(.object(rule, seen: seen, phase: .colon(key: typed)))
                out.append(way)
                return
            }
            guard byte >= 0x20, byte != UInt8(ascii: "\\"), utf8.read(byte) else { return }  // keys are written plainly
            let longer = typed + [byte]
            guard rule.additional != nil || rule.properties.contains(where: { !seen.contains($0.name) && $0.name.starts(with: longer) }) else { return }
            way.frames.append(.key(rule, seen: seen, typed: longer, free: free, utf8: utf8))
            out.append(way)

        case .array(let rule, let count, let afterItem):
            if isWhitespace(byte) { return takeWhitespace(way, top, into: &out) }
            if byte == UInt8(ascii: "]") {
                guard count >= rule.minItems, afterItem || count == 0 else { return }
                way.whitespace = 0
                out.append(way)
                return
            }
            if afterItem {
                guard byte == UInt8(ascii: ","), count < rule.maxItems else { return }
                way.whitespace = 0
                way.frames.append(.array(rule, count: count, afterItem: false))
                out.append(way)
                return
            }
            // An item starts with this byte.
            guard count < rule.maxItems, let node = count < rule.prefix.count ? rule.prefix[count] : rule.items else { return }
            way.frames.append(.array(rule, count: count + 1, afterItem: true))
            way.frames.append(.value(node))
            step(way, byte, schema: schema, into: &out)
        }
    }

    /// A value of `node` starting with `byte` (not whitespace).
    static func start(_ node: JSONSchema.Node, _ byte: UInt8, _ way: Way, schema: JSONSchema, into out: inout [Way]) {
        var way = way
        switch node {
        case .any:
            for option: JSONSchema.Node in [.object(.init(properties: [], required: [], additional: .any)), .array(.init(prefix: [], items: .any, minItems: 0, maxItems: .max)),
                                           .string(.init()), .number(integer: false), .boolean, .null] {
                start(option, byte, way, schema: schema, into: &out)
            }
        case .choice(let options):
            for option in options { start(schema.resolve(option), byte, way, schema: schema, into: &out) }
        case .reference: start(schema.resolve(node), byte, way, schema: schema, into: &out)
        case .object(let rule):
            guard byte == UInt8(ascii: "{") else { return }
            way.frames.append(.object(rule, seen: [], phase: .start))
            out.append(way)
        case .array(let rule):
            guard byte == UInt8(ascii: "[") else { return }
            way.frames.append(.array(rule, count: 0, afterItem: false))
            out.append(way)
        case .string(let rule):
            guard byte == UInt8(ascii: "\"") else { return }
            way.frames.append(.string(rule, StringProgress(shapes: rule.format?.shapes ?? [])))
            out.append(way)
        case .number(let integer):
            guard let state = advance(nil, byte, integer: integer) else { return }
            way.frames.append(.number(integer: integer, state, digits: isDigit(byte) ? 1 : 0))
            out.append(way)
        case .boolean:
            for text in ["true", "false"] where text.utf8.first == byte {
                way.frames.append(.literal(text: Array(text.utf8), index: 0))
                step(way, byte, schema: schema, into: &out)
                way.frames.removeLast()
            }
        case .null:
            guard byte == UInt8(ascii: "n") else { return }
            way.frames.append(.literal(text: Array("null".utf8), index: 0))
            step(way, byte, schema: schema, into: &out)
        case .literals(let texts):
            for text in texts where text.first == byte {
                var copy = way
                copy.frames.append(.literal(text: text, index: 0))
                step(copy, byte, schema: schema, into: &out)
            }
        }
    }

    /// `top` stays and takes one more byte of whitespace, within ``maxWhitespace`` in a row.
    static func takeWhitespace(_ way: Way, _ top: Frame, into out: inout [Way]) {
        guard way.whitespace < maxWhitespace else { return }
        var way = way
        way.frames.append(top)
        way.whitespace += 1
        out.append(way)
    }

    /// JSON's number grammar, one byte at a time (`integer`: no fraction or exponent); nil when
    /// `byte` cannot continue the number.
    static func advance(_ state: NumberState?, _ byte: UInt8, integer: Bool) -> NumberState? {
        let digit = isDigit(byte)
        switch state {
        case nil: return byte == UInt8(ascii: "-") ? .minus : byte == UInt8(ascii: "0") ? .zero : digit ? .integer : nil
        case .minus?: return byte == UInt8(ascii: "0") ? .zero : digit ? .integer : nil
        case .zero?, .integer?:
            if digit { return state == .integer ? .integer : nil }
            if integer { return nil }
            return byte == UInt8(ascii: ".") ? .dot : (byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")) ? .exponent : nil
        case .dot?: return digit ? .fraction : nil
        case .fraction?: return digit ? .fraction : (byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")) ? .exponent : nil
        case .exponent?: return byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") ? .exponentSign : digit ? .exponentDigits : nil
        case .exponentSign?, .exponentDigits?: return digit ? .exponentDigits : nil
        }
    }

    static func isHex(_ byte: UInt8) -> Bool { isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f")) }

    static func matches(shape: UInt8, _ byte: UInt8) -> Bool {
        switch shape {
        case UInt8(ascii: "d"): return isDigit(byte)
        case UInt8(ascii: "h"): return isHex(byte)
        default: return shape == byte
        }
    }

    /// Whether another key may still be written.
    static func hasKeysLeft(_ rule: JSONSchema.ObjectRule, _ seen: Set<[UInt8]>) -> Bool {
        rule.additional != nil || rule.properties.contains { !seen.contains($0.name) }
    }
}
