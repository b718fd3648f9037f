import Foundation

/// A function the model may call: OpenAI's `tools[i].function`.
public struct ToolFunction: Sendable {
    public var name: String
    public var description: String?
    /// The arguments' JSON schema (an object schema; nil: any object).
    public var parameters: JSONValue?

    public init(name: String, description: String? = nil, parameters: JSONValue? = nil) {
        (self.name, self.description, self.parameters) = (name, description, parameters)
    }

    /// `{"type": "function", "function": {...}}`, as chat templates and the generic tool prompt show it.
    public var json: JSONValue {
        var function: [String: JSONValue] = ["name": .string(name)]
        if let description { function["description"] = .string(description) }
        function["parameters"] = parameters ?? .object(["type": .string("object")])
        return .object(["type": .string("function"), "function": .object(function)])
    }
}

/// A call the model wrote: the function's name and its arguments as JSON text.
public struct ToolCall: Sendable, Equatable {
    public var name: String
    public var arguments: String
    public init(name: String, arguments: String) { (self.name, self.arguments) = (name, arguments) }
}

/// Reads the tool calls in a model's answer, in the formats the families write them:
/// - Hermes / Qwen 2.5 / Qwen 3 (and the generic tool prompt): `<tool_call>{"name": …,
///   "arguments": {…}}</tool_call>`, one block per call;
/// - Llama 3.x: a JSON object `{"name": …, "parameters": {…}}` (or `"arguments"`) as the whole
///   answer, after `<|python_tag|>` or not, several separated by `;`;
/// - a constrained answer (``ToolCalls/constraint(for:)``): `{"name": …, "arguments": {…}}`.
/// Text outside the calls is the answer's content. A block that is not a call (not JSON, no
/// name, a function not offered) is left as text: the answer is then plain content.
public enum ToolCalls {
    /// The calls in `text` to functions among `offered`, and the text outside them.
    public static func parse(_ text: String, offered: [ToolFunction]) -> (calls: [ToolCall], content: String) {
        let names = Set(offered.map(\.name))
        // Hermes blocks.
        var calls: [ToolCall] = [], content = "", rest = Substring(text)
        while let open = rest.range(of: "<tool_call>") {
            guard let close = rest[open.upperBound...].range(of: "</tool_call>"),
                  let call = call(in: rest[open.upperBound..<close.lowerBound], names: names) else { break }
            content += rest[..<open.lowerBound]
            calls.append(call)
            rest = rest[close.upperBound...]
        }
        if !calls.isEmpty { return (calls, (content + rest).trimmingCharacters(in: .whitespacesAndNewlines)) }
        // A bare JSON call (Llama 3.x, or a constrained answer), possibly several joined by ';'.
        var body = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if body.hasPrefix("<|python_tag|>") { body = String(body.dropFirst("<|python_tag|>".count)) }
        let pieces = body.split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        let bare = pieces.compactMap { call(in: Substring($0), names: names) }
        if !bare.isEmpty && bare.count == pieces.count { return (bare, "") }
        return ([], text)
    }

    /// One call from JSON text `{"name": …, "arguments"|"parameters": {…}}`, when it is one; its
    /// arguments as the model wrote them (``ToolCallScanner``).
    static func call(in text: Substring, names: Set<String>) -> ToolCall? {
        ToolCallScanner.call(in: text.utf8, names: names)
    }

    /// The schema a forced call must match: `{"name": one of the functions, "arguments": that
    /// function's parameters}`, so the arguments always validate.
    public static func constraint(for functions: [ToolFunction]) throws -> JSONSchema {
        let options: [JSONValue] = functions.map { function in
            .object(["type": .string("object"), "additionalProperties": .bool(false), "required": .array([.string("name"), .string("arguments")]),
                     "properties": .object(["name": .object(["const": .string(function.name)]),
                                            "arguments": function.parameters ?? .object(["type": .string("object"), "additionalProperties": .bool(true)])])])
        }
        return try JSONSchema(options.count == 1 ? options[0] : .object(["anyOf": .array(options)]))
    }

    /// The instruction for a chat template that does not render tools itself: the functions and
    /// the format to call them in (Hermes', which ``parse(_:offered:)`` reads).
    public static func genericPrompt(for functions: [ToolFunction]) -> String {
        "You may call one or more of these functions to answer. Each is described by a JSON schema:\n"
            + functions.map(\.json.compactText).joined(separator: "\n")
            + "\nTo call a function, answer with one block per call and nothing else:\n<tool_call>\n{\"name\": <function name>, \"arguments\": <arguments object>}\n</tool_call>"
    }
}
