/// Streams an answer that may call tools, piece by piece, in the formats ``ToolCalls`` reads:
/// text goes out as content as soon as it cannot be the start of a call; a call goes out as soon
/// as its function's name is known and its arguments have begun as an object, then its
/// arguments as the model writes them (their text unchanged, so the pieces add up to the whole
/// answer's `arguments`).
///
/// Only what is known is sent: a block whose name is not an offered function, or that is not
/// a call at all, is held and sent as content at the end, as ``ToolCalls/parse(_:offered:)``
/// would read it. One thing cannot be taken back: a call whose name went out and whose
/// arguments then break off (the token budget, or text that is not JSON) stays as far as it was
/// written, as OpenAI's streams do; ``callsComplete`` says whether every call closed.
public struct ToolCallStream: Sendable {
    public enum Delta: Equatable, Sendable {
        /// Text of the answer's content.
        case content(String)
        /// Call `index` (0, 1, … in the answer) starts: the function's name.
        case call(index: Int, name: String)
        /// More of call `index`'s arguments text.
        case arguments(index: Int, String)
    }

    private enum Phase {
        /// Before the first non-space byte: content, a Hermes block, or a bare JSON call.
        case start
        /// Content, watching for `<tool_call>`.
        case content
        /// Inside a call's object, which began at byte `from` of the answer (its block's tag).
        case call(ToolCallScanner, from: Int, hermes: Bool, index: Int?, argumentsSent: Int)
        /// After a call's object: `</tool_call>`, or `;` and another bare call.
        case after(hermes: Bool)
        /// Not a call after all: the answer from byte `from` on is content, sent at the end.
        case notCall(from: Int)
    }

    static let open = Array("<tool_call>".utf8), close = Array("</tool_call>".utf8), pythonTag = Array("<|python_tag|>".utf8)

    private let names: Set<String>
    private let parallel: Bool
    private var bytes: [UInt8] = []
    /// `bytes[..<position]` are dealt with: sent, or read into the current call.
    private var position = 0
    private var phase = Phase.start
    /// Calls sent so far, and whether each one's object has closed.
    public private(set) var callsSent = 0
    public private(set) var callsComplete = true

    /// `offered`: the functions a call may name. `parallel`: false sends the first call only.
    public init(offered: [ToolFunction], parallel: Bool) {
        names = Set(offered.map(\.name))
        self.parallel = parallel
    }

    /// What can be sent once `piece` is appended to the answer.
    public mutating func append(_ piece: String) -> [Delta] {
        bytes += piece.utf8
        return advance(final: false)
    }

    /// What is left to send when the answer has ended.
    public mutating func finish() -> [Delta] {
        var deltas = advance(final: true)
        switch phase {
        case .start: deltas += content(position..<bytes.count)
        case .call(_, let from, _, let index, _):
            if index == nil { deltas += content(from..<bytes.count) } else if index! >= 0 { callsComplete = false }
        case .notCall(let from): deltas += content(from..<bytes.count)
        case .content, .after: break
        }
        position = bytes.count
        return deltas
    }

    private func content(_ range: Range<Int>) -> [Delta] {
        range.isEmpty ? [] : [.content(String(decoding: bytes[range], as: UTF8.self))]
    }

    /// Whether `bytes[at...]` might still become `marker` (a proper prefix of it so far).
    private func mayBecome(_ marker: [UInt8], at start: Int) -> Bool {
        let rest = bytes[start...]
        return rest.count < marker.count && marker.starts(with: rest)
    }

    private mutating func advance(final: Bool) -> [Delta] {
        var deltas: [Delta] = []
        while true {
            switch phase {
            case .start:
                guard let first = bytes[position...].firstIndex(where: { !ToolCallScanner.isSpace($0) }) else { return deltas }
                if bytes[first] == UInt8(ascii: "{") {
                    position = first
                    phase = .call(ToolCallScanner(), from: first, hermes: false, index: nil, argumentsSent: 0)
                } else if bytes[first...].starts(with: Self.pythonTag) {
                    position = first + Self.pythonTag.count
                    phase = .call(ToolCallScanner(), from: first, hermes: false, index: nil, argumentsSent: 0)
                } else if !final && (mayBecome(Self.pythonTag, at: first) || mayBecome(Self.open, at: first)) {
                    return deltas
                } else {
                    phase = .content
                }
            case .content:
                if let tag = firstMatch(Self.open, from: position) {
                    deltas += content(position..<tag)
                    position = tag + Self.open.count
                    phase = .call(ToolCallScanner(), from: tag, hermes: true, index: nil, argumentsSent: 0)
                    continue
                }
                // Hold back an ending that may be the start of the tag.
                var end = bytes.count
                if !final, let held = (max(position, bytes.count - Self.open.count + 1)..<bytes.count).first(where: { mayBecome(Self.open, at: $0) }) {
                    end = held
                }
                deltas += content(position..<end)
                position = end
                return deltas
            case .call(var scanner, let from, let hermes, var index, var argumentsSent):
                while position < bytes.count && !scanner.isClosed && !scanner.isBroken {
                    if !(scanner.bytes.isEmpty && ToolCallScanner.isSpace(bytes[position])) { scanner.read(bytes[position]) }
                    position += 1
                }
                let offered = scanner.name.map(names.contains) ?? true
                if scanner.isBroken || !offered || scanner.isClosed && (scanner.name == nil || scanner.arguments == nil) {
                    // Not a call: if nothing of it went out, all of it is content; else it stops here.
                    if index == nil { phase = .notCall(from: from) } else { callsComplete = false; phase = .notCall(from: position) }
                    continue
                }
                // A call goes out once its arguments are known to be an object (or it has closed whole).
                if index == nil, let name = scanner.name, scanner.streamsArguments || scanner.isClosed {
                    index = parallel || callsSent == 0 ? callsSent : -1  // -1: read, not sent
                    if index! >= 0 {
                        deltas.append(.call(index: index!, name: name))
                        callsSent += 1
                    }
                }
                if let index, index >= 0, let start = scanner.argumentsStart {
                    if scanner.streamsArguments {
                        let end = scanner.argumentsEnd ?? scanner.bytes.count
                        if start + argumentsSent < end {
                            deltas.append(.arguments(index: index, String(decoding: scanner.bytes[(start + argumentsSent)..<end], as: UTF8.self)))
                            argumentsSent = end - start
                        }
                    } else if scanner.isClosed, let arguments = scanner.arguments {
                        deltas.append(.arguments(index: index, arguments))  // written as a string: sent whole, decoded
                    }
                }
                if let index, index >= 0, scanner.isClosed, scanner.argumentsStart == nil { deltas.append(.arguments(index: index, "{}")) }
                if scanner.isClosed {
                    phase = .after(hermes: hermes)
                } else {
                    phase = .call(scanner, from: from, hermes: hermes, index: index, argumentsSent: argumentsSent)
                    return deltas
                }
            case .after(let hermes):
                guard let next = bytes[position...].firstIndex(where: { !ToolCallScanner.isSpace($0) }) else { return deltas }
                if hermes {
                    if bytes[next...].starts(with: Self.close) {
                        position = next + Self.close.count
                        phase = .content
                    } else if !final && mayBecome(Self.close, at: next) {
                        return deltas
                    } else {
                        phase = .content  // an unclosed block: what follows is content
                    }
                } else if bytes[next] == UInt8(ascii: ";") {
                    position = next + 1
                    phase = .call(ToolCallScanner(), from: next + 1, hermes: false, index: nil, argumentsSent: 0)
                } else {
                    phase = .notCall(from: next)
                }
            case .notCall:
                return deltas
            }
        }
    }

    /// The first place at or after `start` where `marker` occurs whole.
    private func firstMatch(_ marker: [UInt8], from start: Int) -> Int? {
        guard bytes.count - start >= marker.count else { return nil }
        return (start...(bytes.count - marker.count)).first { bytes[$0..<($0 + marker.count)].elementsEqual(marker) }
    }
}
