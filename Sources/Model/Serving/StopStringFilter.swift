import Foundation

/// Holds back generated text that may be the start of a stop string, so a streamed answer never
/// shows part of one: text is released once no stop string can begin in it, and generation ends
/// where a stop string appears (the stop string itself is not part of the answer).
public struct StopStringFilter: Sendable {
    public let stops: [String]
    private var pending = ""

    /// Empty strings are ignored.
    public init(stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// Adds `piece`; returns the text safe to show and whether a stop string was reached (then
    /// the text is everything before it, and nothing more should be added).
    public mutating func append(_ piece: String) -> (text: String, stopped: Bool) {
        pending += piece
        guard !stops.isEmpty else { defer { pending = "" }; return (pending, false) }
        if let hit = stops.compactMap({ pending.range(of: $0)?.lowerBound }).min() {
            defer { pending = "" }
            return (String(pending[..<hit]), true)
        }
        // Keep the longest tail that is a prefix of some stop string.
        var keep = pending.endIndex
        for stop in stops {
            var start = pending.index(pending.endIndex, offsetBy: -min(stop.count - 1, pending.count))
            while start < pending.endIndex {
                if stop.hasPrefix(pending[start...]) { keep = min(keep, start); break }
                start = pending.index(after: start)
            }
        }
        defer { pending = String(pending[keep...]) }
        return (String(pending[..<keep]), false)
    }

    /// The text still held back, when generation ends for another reason.
    public mutating func finish() -> String {
        defer { pending = "" }
        return pending
    }
}
