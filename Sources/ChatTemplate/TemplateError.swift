/// A template that cannot be parsed or rendered: what and where.
public struct TemplateError: Error, CustomStringConvertible, Equatable {
    /// `chat template line N: what is wrong` (or `chat template: …` where no line applies).
    public let message: String
    /// The template's own message when it called `raise_exception(message)` (a template refusing
    /// a conversation it cannot render, such as roles that do not alternate); nil for an error of
    /// the template itself. Hugging Face's servers return this text to the client.
    public let raisedMessage: String?

    init(line: Int? = nil, _ message: String, raised: String? = nil) {
        self.message = line.map { "chat template line \($0): \(message)" } ?? "chat template: \(message)"
        raisedMessage = raised
    }

    public var description: String { message }
}
