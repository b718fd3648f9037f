import ArgumentParser

/// The one reader of comma-separated options (`--tokens 1,2,3`): every element must parse, and
/// an empty or malformed one is refused naming the option and its position (1-based), so a slip
/// such as `1,,2` or a trailing comma is never dropped in silence.
enum CommaSeparatedList {
    /// The elements of `text` (spaces around each allowed), each read by `element`; `kind` says
    /// in the error what an element should be ("an integer id").
    static func parse<Element>(_ text: String, option: String, kind: String, element: (String) -> Element?) throws -> [Element] {
        // omittingEmptySubsequences: false keeps the holes, so that they are reported.
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
        return try items.enumerated().map { index, item in
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            let position = "element \(index + 1) of \(items.count)"
            guard !trimmed.isEmpty else { throw ValidationError("\(option): \(position) is empty in '\(text)'; give \(kind) between every pair of commas") }
            guard let value = element(trimmed) else { throw ValidationError("\(option): \(position), '\(trimmed)', is not \(kind)") }
            return value
        }
    }
}
