/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user` or `assistant` (templates may know others).
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A model's chat template (`tokenizer.chat_template` in GGUF, `chat_template` in Hugging Face's
/// `tokenizer_config.json` or `chat_template.jinja`): Jinja, rendered here by a small
/// interpreter of what chat templates use (``JinjaParser``: `for`/`if`/`elif`/`else`/`set`/
/// `macro`, `loop.*`, subscripts and slices, string methods, filters such as `trim` and
/// `tojson`, tests such as `defined`, `namespace`, `raise_exception`), with the whitespace
/// control Hugging Face applies (`trim_blocks`, `lstrip_blocks`).
///
/// A construct the interpreter does not know is an error naming it and its line, at ``init(_:)``
/// for statements and at ``render(_:addGenerationPrompt:bosToken:eosToken:variables:)`` for
/// filters, tests and methods.
public struct ChatTemplate: @unchecked Sendable {  // the parsed nodes are immutable after init
    public let source: String
    private let nodes: [JinjaNode]

    public init(_ source: String) throws {
        self.source = source
        nodes = try JinjaParser.parse(source)
    }

    /// The prompt text of `messages`; with `addGenerationPrompt`, ending where the assistant's
    /// answer starts. `variables` are further string variables for the template.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "", eosToken: String = "",
                       variables: [String: String] = [:]) throws -> String {
        var globals: [String: JinjaValue] = [
            "messages": .array(messages.map { .object(JinjaObject([("role", .string($0.role)), ("content", .string($0.content))])) }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken), "eos_token": .string(eosToken),
        ]
        for (name, value) in variables { globals[name] = .string(value) }
        return try JinjaInterpreter(globals: globals).render(nodes)
    }
}
