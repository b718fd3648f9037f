/// Reads JSON text byte by byte against a ``JSONSchema`` and says whether what it has read is a
/// prefix of a valid document: a pushdown recognizer whose stack follows the document's nesting.
/// Where the schema allows several things at once (`anyOf`, `enum`, a list of types) it keeps
/// every way still possible, so `accepts` is exact: a byte is refused as soon as no valid
/// document starts with the text.
///
/// Whitespace between tokens is allowed, at most ``maxWhitespace`` bytes in a row, and numbers
/// take at most ``maxDigits`` digits before and after the point (so a model cannot pad or count
/// forever); inside strings and keys, escapes are allowed (a surrogate pair is one character, a
/// key is matched by the characters it spells) and control characters are not.
///
/// It reads documents as a decoder writes them, so a few valid spellings are refused, by
/// design: whitespace after the value (decoding ends with the value), an `integer` written with a
/// fraction or exponent (`1.0`), an `enum`/`const` value other than in its compact text
/// (``JSONValue/compactText``), and a string with a `format` written with escapes.
/// `scripts/schema_differential.py` checks everything else against Python's `jsonschema`.
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
        }
        // Alternatives that have come back together (the two readings of `1` under integer or
        // number, once the number ends) are one way again. Compared only when there are several:
        // most steps have one way.
        if next.count > 1 {
            var distinct: [Way] = []
            for way in next where !distinct.contains(way) { distinct.append(way) }
            next = distinct
        }
        ways = next.count > Self.maxWays ? Array(next.prefix(Self.maxWays)) : next
    }

    /// When every way is inside a string without a format (or a key any name may take), outside
    /// an escape and a character: how many more characters it takes (`Int.max`: any number).
    /// Tokens of plain characters up to that many keep the text valid without being read.
    var plainRoom: Int? {
        guard !ways.isEmpty else { return nil }
        var room = 0
        for way in ways {
            switch way.frames.last {
            case .string(let rule, let progress)? where rule.format == nil && progress.escape < 0 && progress.utf8.remaining == 0:
                // A token fits when it fits some way: the roomiest decides.
                room = max(room, rule.maxLength == .max ? .max : rule.maxLength - progress.length)
            case .key(_, _, let key, let free)? where free && key.utf8.remaining == 0 && key.escape < 0 && key.high == nil:
                room = .max
            default:
                return nil
            }
        }
        return room
    }

    // MARK: The machine

    /// One reading: a stack of frames (innermost last) and the whitespace run before the next byte.
    struct Way: Sendable, Equatable {
        var frames: [Frame]
        var whitespace: Int
    }

    enum Frame: Sendable, Equatable {
        /// A value of this node is expected next.
        case value(JSONSchema.Node)
        /// Inside an object: which keys have been seen, where we are.
        case object(JSONSchema.ObjectRule, seen: Set<[UInt8]>, phase: ObjectPhase)
        /// Inside a key: what it says so far; `free` when any key is allowed.
        case key(JSONSchema.ObjectRule, seen: Set<[UInt8]>, KeyProgress, free: Bool)
        /// Inside an array: items so far, and whether one just ended.
        case array(JSONSchema.ArrayRule, count: Int, afterItem: Bool)
        /// Inside a string (after its opening quote).
        case string(JSONSchema.StringRule, StringProgress)
        /// Inside a number.
        /// Inside a number: where in its grammar, and the digits of the current part so far.
        case number(integer: Bool, NumberState, digits: Int)
        /// Matching fixed texts (`true`, an enum's values, …): those still possible, at byte `index`.
        case literal(texts: [[UInt8]], index: Int)
    }

    /// A key being read: its characters so far as UTF-8 (escapes decoded, so `"na\u00efve"` is
    /// the property `naïve`), and where the raw text stands (a UTF-8 sequence, an escape, a high
    /// surrogate waiting for its low half). Each byte is taken only if some allowed name can
    /// still follow, hex digits of an escape included, so a key never runs into a dead end.
    struct KeyProgress: Sendable, Equatable {
        var typed: [UInt8] = []
        var utf8 = UTF8Progress()
        var escape = -1
        var unit: UInt32 = 0
        /// A `\uD800…\uDBFF` read, waiting for `\uDC00…\uDFFF`.
        var high: UInt32?

        /// Reads one byte of the key's text; `names`: the names it may become (nil: any).
        mutating func read(_ byte: UInt8, names: [[UInt8]]?) -> Bool {
            if escape >= 0 {
                let simple = escape == 0 && byte != UInt8(ascii: "u")
                guard JSONRecognizer.escape(&escape, &unit, byte) else { return false }
                if high != nil && simple { return false }  // a high surrogate's pair must follow
                guard escape == -1 else { return hexMayFollow(names: names) }
                let scalar: UInt32
                if simple {
                    scalar = UInt32(Self.simpleEscapes[byte]!)
                } else if let first = high {
                    guard (0xDC00...0xDFFF).contains(unit) else { return false }
                    scalar = 0x10000 + ((first - 0xD800) << 10) + (unit - 0xDC00)
                    high = nil
                } else if (0xD800...0xDBFF).contains(unit) {
                    high = unit
                    return hexMayFollow(names: names)
                } else if (0xDC00...0xDFFF).contains(unit) {
                    return false  // a low surrogate alone names no character
                } else {
                    scalar = unit
                }
                typed += Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
                return names.map { $0.contains { $0.starts(with: typed) } } ?? true
            }
            if high != nil { guard byte == UInt8(ascii: "\\") else { return false }; escape = 0; return true }
            if byte == UInt8(ascii: "\\") && utf8.remaining == 0 {
                escape = 0
                return names.map { $0.contains { $0.count > typed.count && $0.starts(with: typed) } } ?? true
            }
            guard byte >= 0x20, byte != UInt8(ascii: "\""), utf8.read(byte) else { return false }
            typed.append(byte)
            return names.map { $0.contains { $0.starts(with: typed) } } ?? true
        }

        /// Whether the hex digits of the escape so far can still spell the next character of a
        /// name (as one UTF-16 unit, or a surrogate pair's current half).
        func hexMayFollow(names: [[UInt8]]?) -> Bool {
            let digits = escape == -1 ? 4 : 4 - escape, shift = UInt32(4 * (4 - digits))
            guard let names else {
                // Any key: only the surrogate rules bind (a low half after a high one).
                return high == nil || escape == -1 && high == unit || ((0xDC00 >> shift)...(0xDFFF >> shift)).contains(unit)
            }
            return names.contains { name in
                guard name.count > typed.count, name.starts(with: typed),
                      let character = String(decoding: name[typed.count...], as: UTF8.self).unicodeScalars.first else { return false }
                let units = Array(String(character).utf16).map(UInt32.init)
                if let first = high, escape != -1 || unit != first {
                    // Reading the low half: the high half already matched this name's.
                    return units.count == 2 && units[0] == first && units[1] >> shift == unit
                }
                return units[0] >> shift == unit
            }
        }

        static let simpleEscapes: [UInt8: UInt8] = [UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F,
                                                    UInt8(ascii: "b"): 0x08, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A,
                                                    UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09]
    }

    enum ObjectPhase: Sendable, Equatable {
        /// After `{`: a key or `}`.
        case start
        /// After a key: `:`.
        case colon(key: [UInt8])
        /// After a value: `,` or `}`.
        case afterValue
        /// After `,`: a key.
        case key
    }

    struct StringProgress: Sendable, Equatable {
        /// Characters so far (UTF-8 continuation bytes do not count).
        var length = 0
        /// The UTF-8 character being read: continuation bytes still to come, and the range the next
        /// one must fall in (Unicode's table of well-formed sequences), so the text always decodes.
        var utf8 = UTF8Progress()
        /// Bytes left of an escape: -1 none, 0 after `\`, 1…4 hex digits of `\u` to come.
        var escape = -1
        /// The format shapes still matching, and the position in them.
        var shapes: [[UInt8]] = []
        /// The code unit of a `\u` escape so far; whether the last character was a high
        /// surrogate written as an escape (a low one after it completes the pair: one character,
        /// as JSON reads it); whether this escape must be that low surrogate (the string is at
        /// its `maxLength` after the high one).
        var unit: UInt32 = 0
        var afterHighSurrogate = false, mustBeLowSurrogate = false
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

    enum NumberState: Sendable, Equatable {
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

        case .literal(let texts, let index):
            let matching = texts.filter { $0[index] == byte }
            // A text that ends here ends the value; the longer ones go on as one more way.
            if matching.contains(where: { $0.count == index + 1 }) { out.append(way) }
            let longer = matching.filter { $0.count > index + 1 }
            if !longer.isEmpty {
                way.frames.append(.literal(texts: longer, index: index + 1))
                out.append(way)
            }

        case .string(let rule, var progress):
            if progress.escape >= 0 {
                let simple = progress.escape == 0 && byte != UInt8(ascii: "u")
                guard Self.escape(&progress.escape, &progress.unit, byte) else { return }
                if progress.mustBeLowSurrogate {
                    // At maxLength only the low half of the pair fits: \uDC00…\uDFFF, checked digit by digit.
                    guard !simple else { return }
                    let digits = progress.escape == -1 ? 4 : 4 - progress.escape, shift = UInt32(4 * (4 - digits))
                    guard (0xDC00 >> shift)...(0xDFFF >> shift) ~= progress.unit || digits == 0 else { return }
                }
                if progress.escape == -1 {
                    let low = progress.afterHighSurrogate && (0xDC00...0xDFFF).contains(progress.unit)
                    if !low { progress.length += 1 }
                    progress.afterHighSurrogate = !low && (0xD800...0xDBFF).contains(progress.unit)
                    progress.mustBeLowSurrogate = false
                }
            } else if progress.utf8.remaining > 0 {
                guard progress.utf8.read(byte) else { return }
            } else if byte == UInt8(ascii: "\"") {
                guard progress.length >= rule.minLength, rule.format == nil || progress.shapes.contains(where: { $0.count == progress.length }) else { return }
                out.append(way)
                return
            } else if byte == UInt8(ascii: "\\") {
                guard rule.format == nil, progress.length < rule.maxLength || progress.afterHighSurrogate else { return }
                progress.mustBeLowSurrogate = progress.length >= rule.maxLength
                progress.escape = 0
            } else {
                // A character starts (continuation bytes were taken above).
                guard byte >= 0x20, progress.length < rule.maxLength, progress.utf8.read(byte) else { return }
                progress.afterHighSurrogate = false
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
                way.frames.append(.key(rule, seen: seen, KeyProgress(), free: rule.additional != nil))
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

        case .key(let rule, let seen, var key, let free):
            if byte == UInt8(ascii: "\""), key.utf8.remaining == 0, key.escape < 0, key.high == nil {
                let known = rule.properties.contains { $0.name == key.typed }
                guard !seen.contains(key.typed), known || rule.additional != nil else { return }
                guard case .object(_, _, _)? = way.frames.last else { return }
                way.frames.removeLast()
                way.frames.append(.object(rule, seen: seen, phase: .colon(key: key.typed)))
                out.append(way)
                return
            }
            // The names a key may still become: any (free), or the unseen properties it starts.
            let names = free ? nil : rule.properties.map(\.name).filter { !seen.contains($0) }
            guard key.read(byte, names: names) else { return }
            way.frames.append(.key(rule, seen: seen, key, free: free))
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
            way.frames.append(.literal(texts: [Array("true".utf8), Array("false".utf8)], index: 0))
            step(way, byte, schema: schema, into: &out)
        case .null:
            way.frames.append(.literal(texts: [Array("null".utf8)], index: 0))
            step(way, byte, schema: schema, into: &out)
        case .literals(let texts):
            // One way for all the values at once (an enum of a hundred names stays one way).
            way.frames.append(.literal(texts: texts, index: 0))
            step(way, byte, schema: schema, into: &out)
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

    /// One byte of an escape after `\` (`state` 0) or of `\u`'s hex digits (`state` 4…1):
    /// false when it cannot be one. `state` ends at −1 when the escape is complete; `unit`
    /// collects `\u`'s code unit.
    static func escape(_ state: inout Int, _ unit: inout UInt32, _ byte: UInt8) -> Bool {
        if state == 0 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                 UInt8(ascii: "r"), UInt8(ascii: "t"):
                (state, unit) = (-1, 0)
            case UInt8(ascii: "u"): (state, unit) = (4, 0)
            default: return false
            }
            return true
        }
        guard isHex(byte) else { return false }
        unit = unit << 4 | UInt32(isDigit(byte) ? byte - 0x30 : (byte | 0x20) - 0x57)
        state -= 1
        if state == 0 { state = -1 }
        return true
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
