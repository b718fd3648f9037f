import Foundation

/// Reads one tool call's JSON object, `{"name": …, "arguments"|"parameters": …}`, byte by byte,
/// and says as early as it can what the call is: its name once that string closes, and where
/// its arguments' text starts, so a stream can send them as they are written. The arguments are
/// the model's own text (a JSON object's bytes, unchanged), so the pieces streamed add up to
/// the whole answer's `arguments`.
///
/// It follows the nesting only (strings, escapes, brackets); whether the whole is JSON is
/// decided once the object closes.
struct ToolCallScanner {
    private(set) var bytes: [UInt8] = []
    /// The function's name, once its string has closed.
    private(set) var name: String?
    /// Where the arguments' value starts in ``bytes``, and where it ends once it has.
    private(set) var argumentsStart: Int?
    private(set) var argumentsEnd: Int?
    /// The object has closed and parsed as JSON.
    private(set) var isClosed = false
    /// The text is not a call object (bad nesting, not JSON, a second name).
    private(set) var isBroken = false

    private var depth = 0, inString = false, escape = false
    /// At the top level: expecting a key, or inside a value (and where it started).
    private var expectingKey = true, keyStart: Int?, key: String?, valueStart: Int?

    static let argumentKeys: Set<String> = ["arguments", "parameters"]

    /// Reads one byte (not after ``isClosed`` or ``isBroken``).
    mutating func read(_ byte: UInt8) {
        let index = bytes.count
        bytes.append(byte)
        if inString {
            if escape { escape = false } else if byte == UInt8(ascii: "\\") { escape = true } else if byte == UInt8(ascii: "\"") {
                inString = false
                if depth == 1 { closeString(at: index) }
            }
            return
        }
        switch byte {
        case _ where Self.isSpace(byte):
            return
        case UInt8(ascii: "\""):
            guard depth > 0 else { isBroken = true; return }
            inString = true
            if depth == 1 { if expectingKey { keyStart = index } else { startValue(at: index) } }
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            if depth == 0 && byte != UInt8(ascii: "{") || depth == 1 && expectingKey { isBroken = true; return }
            if depth == 1 { startValue(at: index) }
            depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            guard depth > 0 else { isBroken = true; return }
            depth -= 1
            if depth == 1 { endValue(at: index + 1) }
            if depth == 0 {
                if valueStart != nil { endValue(at: index) }
                isClosed = (try? JSONValue(parsing: Data(bytes)))?.object != nil
                isBroken = !isClosed
            }
        case UInt8(ascii: ":") where depth == 1:
            guard expectingKey, key != nil else { isBroken = true; return }
            expectingKey = false
        case UInt8(ascii: ",") where depth == 1:
            if valueStart != nil { endValue(at: index) }
            expectingKey = true
            key = nil
        default:
            if depth == 0 { isBroken = true } else if depth == 1 && !expectingKey && valueStart == nil { startValue(at: index) }
        }
    }

    private mutating func closeString(at index: Int) {
        if expectingKey, let start = keyStart {
            key = (try? JSONValue(parsing: Data(bytes[start...index])))?.string
            keyStart = nil
        } else {
            endValue(at: index + 1)
        }
    }

    private mutating func startValue(at index: Int) {
        guard valueStart == nil else { return }
        valueStart = index
        if let key, Self.argumentKeys.contains(key) {
            guard argumentsStart == nil else { isBroken = true; return }
            argumentsStart = index
        }
    }

    /// A top-level value ended just before `end` (a primitive's end is trimmed of whitespace).
    private mutating func endValue(at end: Int) {
        guard let start = valueStart else { return }
        var end = end
        while end > start, Self.isSpace(bytes[end - 1]) { end -= 1 }
        valueStart = nil
        if key == "name" {
            guard name == nil, let text = (try? JSONValue(parsing: Data(bytes[start..<end])))?.string else { isBroken = true; return }
            name = text
        } else if argumentsStart == start {
            argumentsEnd = end
        }
    }

    /// The arguments as the API's JSON text, once the object has closed: the model's object as
    /// written, an object the model wrote as a JSON string, or `{}` when there are none. Nil
    /// when they are not an object.
    var arguments: String? {
        guard isClosed else { return nil }
        guard let start = argumentsStart, let end = argumentsEnd else { return "{}" }
        let text = Data(bytes[start..<end])
        switch try? JSONValue(parsing: text) {
        case .object?: return String(decoding: text, as: UTF8.self)
        case .string(let inner)?: return (try? JSONValue(parsing: Data(inner.utf8)))?.object != nil ? inner : nil
        default: return nil
        }
    }

    /// The call in `text` (an object, spaces around it allowed) to a function among `names`.
    static func call(in text: some Collection<UInt8>, names: Set<String>) -> ToolCall? {
        var scanner = ToolCallScanner()
        var rest = text.drop(while: isSpace)
        while let byte = rest.first, !scanner.isClosed, !scanner.isBroken {
            scanner.read(byte)
            rest = rest.dropFirst()
        }
        guard rest.allSatisfy(isSpace), let name = scanner.name, names.contains(name), let arguments = scanner.arguments else { return nil }
        return ToolCall(name: name, arguments: arguments)
    }

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
    }

    /// Whether the arguments are an object being written, so their text can be streamed as it comes.
    var streamsArguments: Bool { argumentsStart.map { bytes[$0] == UInt8(ascii: "{") } ?? false }
}
