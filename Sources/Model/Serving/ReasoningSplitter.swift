/// Splits a reasoning model's answer into its reasoning (`<think>…</think>`, OpenAI-compatible
/// servers' `reasoning_content`) and the answer proper (`content`), piece by piece as it streams:
/// text that may be the start of a tag is held back until it is known not to be one.
public struct ReasoningSplitter: Sendable {
    public enum Part: Sendable, Equatable {
        case reasoning(String)
        case content(String)
    }

    public static let open = "<think>", close = "</think>"
    private var inReasoning: Bool
    /// Whether the answer's start has been read (an opening tag is only looked for there).
    private var started: Bool
    /// After `</think>`: the whitespace that follows it is dropped.
    private var afterClose = false
    private var pending = ""

    /// `insideReasoning`: the prompt itself opened the reasoning (a template that writes
    /// `<think>` in its generation prompt), so the answer starts inside it.
    public init(insideReasoning: Bool) {
        inReasoning = insideReasoning
        started = insideReasoning
    }

    /// The parts `text` completes.
    public mutating func append(_ text: String) -> [Part] {
        pending += text
        var parts: [Part] = []
        while !pending.isEmpty {
            if !started {
                let trimmed = pending.drop { $0.isWhitespace }
                if trimmed.hasPrefix(Self.open) {
                    pending = String(trimmed.dropFirst(Self.open.count))
                    (started, inReasoning) = (true, true)
                    continue
                }
                if Self.open.hasPrefix(trimmed) { break }  // may still become the tag
                started = true
                continue
            }
            if afterClose {
                pending = String(pending.drop { $0.isWhitespace })
                if pending.isEmpty { break }
                afterClose = false
            }
            guard inReasoning else {
                parts.append(.content(pending))
                pending = ""
                break
            }
            if let range = pending.range(of: Self.close) {
                if range.lowerBound > pending.startIndex { parts.append(.reasoning(String(pending[..<range.lowerBound]))) }
                pending = String(pending[range.upperBound...])
                (inReasoning, afterClose) = (false, true)
                continue
            }
            // Keep a tail that may be the start of the closing tag.
            var keep = pending.endIndex
            var index = pending.index(pending.endIndex, offsetBy: -min(Self.close.count - 1, pending.count))
            while index < pending.endIndex {
                if Self.close.hasPrefix(pending[index...]) { keep = index; break }
                index = pending.index(after: index)
            }
            if keep > pending.startIndex { parts.append(.reasoning(String(pending[..<keep]))) }
            pending = String(pending[keep...])
            break
        }
        return parts
    }

    /// What is still held back, when the answer ends.
    public mutating func finish() -> [Part] {
        defer { pending = "" }
        guard !pending.isEmpty, !afterClose || pending.contains(where: { !$0.isWhitespace }) else { return [] }
        return [inReasoning ? .reasoning(pending) : .content(pending)]
    }
}
