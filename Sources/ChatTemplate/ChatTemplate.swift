/// One turn of a conversation, as plain text. A turn with more (tool calls, tool results,
/// reasoning, content in parts) is a ``TemplateValue`` given to
/// ``ChatTemplate/render(messages:tools:addGenerationPrompt:bosToken:eosToken:variables:)``.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user` or `assistant` (templates may know others).
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// `{"role": role, "content": content}`, as a template sees the message.
    public var templateValue: TemplateValue { ["role": .string(role), "content": .string(content)] }
}

/// A model's chat template (`tokenizer.chat_template` in GGUF, `chat_template` in Hugging Face's
/// `tokenizer_config.json` or `chat_template.jinja`): Jinja, rendered here by a small
/// interpreter of what chat templates use (``JinjaParser``: `for`/`if`/`elif`/`else`/`set`/
/// `macro`, `loop.*`, subscripts and slices, string methods, filters such as `trim` and
/// `tojson`, tests such as `defined`, `namespace`, `raise_exception`), with the whitespace
/// control Hugging Face applies (`trim_blocks`, `lstrip_blocks`).
///
/// A construct the interpreter does not know is an error naming it and its line, at ``init(_:)``
/// for statements and at render time for filters, tests and methods.
public struct ChatTemplate: @unchecked Sendable {  // the parsed nodes are immutable after init
    public let source: String
    private let nodes: [JinjaNode]

    public init(_ source: String) throws {
        self.source = source
        nodes = try JinjaParser.parse(source)
    }

    /// The prompt text of `messages`; with `addGenerationPrompt`, ending where the assistant's
    /// answer starts. `variables` are further string variables for the template.
    ///
    /// Unlike ``render(messages:tools:addGenerationPrompt:bosToken:eosToken:variables:)``, this
    /// leaves `tools` undefined.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "",
                       eosToken: String = "", variables: [String: String] = [:]) throws -> String {
        var globals: [String: JinjaValue] = ["bos_token": .string(bosToken), "eos_token": .string(eosToken)]
        for (name, value) in variables { globals[name] = .string(value) }
        globals["messages"] = .array(messages.map { JinjaValue($0.templateValue) })
        globals["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try JinjaInterpreter(globals: globals).render(nodes)
    }

    /// The prompt text of a conversation of structured messages, as transformers'
    /// `apply_chat_template(messages, tools=tools, add_generation_prompt=…, **variables)` renders
    /// it.
    ///
    /// - Parameters:
    ///   - messages: objects in the OpenAI chat shape: `role`; `content` as a string or a list of
    ///     parts (`{"type": "text", "text": …}`); on assistant turns `tool_calls`
    ///     (`[{"id", "type": "function", "function": {"name", "arguments"}}]`, arguments an
    ///     object or a JSON string) and `reasoning_content`; on `tool` turns `tool_call_id` and
    ///     `name`. The template decides what it reads; nothing here is required.
    ///   - tools: function tools (`{"type": "function", "function": {"name", "description",
    ///     "parameters": JSON schema}}`); nil is Python's `None`, as transformers passes it.
    ///   - addGenerationPrompt: end where the assistant's answer starts.
    ///   - bosToken, eosToken: the tokenizer's special tokens' text, `bos_token` and `eos_token`.
    ///   - variables: further variables, such as `enable_thinking: false`, or `documents` (None
    ///     unless given, as transformers passes it); they may replace `bos_token` and
    ///     `eos_token`, not `messages`, `tools` or `add_generation_prompt`.
    /// - Throws: ``TemplateError`` naming the template line; ``TemplateError/raisedMessage`` is
    ///   the template's own message when it refused the conversation with `raise_exception`.
    public func render(messages: [TemplateValue], tools: [TemplateValue]? = nil, addGenerationPrompt: Bool,
                       bosToken: String = "", eosToken: String = "",
                       variables: [String: TemplateValue] = [:]) throws -> String {
        var globals: [String: JinjaValue] = ["bos_token": .string(bosToken), "eos_token": .string(eosToken),
                                             "documents": .none]
        for (name, value) in variables { globals[name] = JinjaValue(value) }
        globals["messages"] = .array(messages.map(JinjaValue.init))
        globals["tools"] = tools.map { .array($0.map(JinjaValue.init)) } ?? JinjaValue.none
        globals["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try JinjaInterpreter(globals: globals).render(nodes)
    }
}
