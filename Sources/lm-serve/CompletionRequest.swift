import ChatTemplate
import Foundation
import Model

/// A `/v1/chat/completions` or `/v1/completions` body, checked field by field: every problem is
/// a 400 naming the field, and fields we do not implement are refused rather than ignored (a
/// client asking for `tools` should not silently get none).
struct CompletionRequest {
    enum Input {
        /// The messages as strings, and as the template sees them with tool calls and results.
        case chat([ChatMessage], structured: [TemplateValue])
        case text(String)
    }

    var input: Input
    var maxTokens: Int?
    var temperature: Float = 1
    var topP: Float = 1
    var seed: UInt64?
    var stop: [String] = []
    var stream = false
    var includeUsage = false
    var topK = 0
    var minP: Float = 0
    var repetitionPenalty: Float = 1
    var presencePenalty: Float = 0
    var frequencyPenalty: Float = 0
    var logitBias: [Int32: Float] = [:]
    /// Alternatives per token when log-probabilities are asked for (chat: `logprobs: true` with
    /// `top_logprobs` 0…20; completions: `logprobs` 0…5), else nil.
    var logprobs: Int?
    /// `response_format`: the schema the answer must match (`json_object`: any object), or nil.
    var responseSchema: JSONSchema?
    /// `chat_template_kwargs`: extra variables for the chat template (`enable_thinking`, say).
    var templateVariables: [String: TemplateValue] = [:]
    /// `tools` and how to use them (chat only), or nil.
    var tools: ToolRequest?
    /// Whether a message carries tool calls or results (the conversation renders structured).
    var hasToolMessages = false

    /// The fields read (some only at the value that changes nothing, such as `n` 1), besides
    /// `messages` or `prompt`; `user` is accepted and ignored.
    private static let known: Set<String> = ["user", "model", "stream_options", "max_tokens", "max_completion_tokens",
                                               "temperature", "top_p", "seed", "stop", "stream", "n",
                                               "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "echo", "suffix",
                                               "top_k", "min_p", "repetition_penalty", "repeat_penalty", "logit_bias",
                                               "response_format", "chat_template_kwargs", "tools", "tool_choice", "parallel_tool_calls"]

    /// Reads `body` (a JSON object) for `chat` or plain completions; `served` is the model id.
    init(json body: [String: JSONValue], chat: Bool, served: String) throws {
        if let model = body["model"] {
            guard let name = model.string else { throw APIError.invalid("'model' must be a string", param: "model") }
            guard name == served else {
                throw APIError(status: .notFound, message: "the model '\(name)' does not exist; this server serves '\(served)'",
                               param: "model", code: "model_not_found")
            }
        }
        let inputField = chat ? "messages" : "prompt"
        for key in body.keys.sorted() where key != inputField && !Self.known.contains(key) {
            throw APIError.invalid("unknown or unsupported field '\(key)'", param: key)
        }
        if chat {
            guard let list = body["messages"]?.array, !list.isEmpty else {
                throw APIError.invalid("'messages' must be a non-empty array of {role, content}", param: "messages")
            }
            let messages = try list.enumerated().map { try Self.message($1, index: $0) }
            input = .chat(messages.map(\.plain), structured: messages.map(\.structured))
            hasToolMessages = messages.contains(where: \.carriesTools)
            tools = try ToolRequest(body)
        } else {
            switch body["prompt"] {
            case .string(let text)?: input = .text(text)
            case .array(let texts)? where texts.count == 1 && texts[0].string != nil: input = .text(texts[0].string!)
            case nil: throw APIError.invalid("'prompt' is required", param: "prompt")
            default: throw APIError.invalid("'prompt' must be a string (or an array of exactly one string)", param: "prompt")
            }
        }
        for key in ["max_tokens", "max_completion_tokens"] {
            guard let value = body[key] else { continue }
            guard let count = value.integer, count >= 1, count <= 1 << 30 else {
                throw APIError.invalid("'\(key)' must be an integer of at least 1, got \(value.shortText)", param: key)
            }
            maxTokens = count
        }
        if let value = body["temperature"] {
            guard let number = value.number, number >= 0, number <= 2 else {
                throw APIError.invalid("'temperature' must be a number in [0, 2], got \(value.shortText)", param: "temperature")
            }
            temperature = Float(number)
        }
        if let value = body["top_p"] {
            guard let number = value.number, number > 0, number <= 1 else {
                throw APIError.invalid("'top_p' must be a number in (0, 1], got \(value.shortText)", param: "top_p")
            }
            topP = Float(number)
        }
        if let value = body["seed"] {
            guard let number = value.integer else { throw APIError.invalid("'seed' must be an integer, got \(value.shortText)", param: "seed") }
            seed = UInt64(bitPattern: Int64(number))
        }
        switch body["stop"] {
        case nil, .null?: break
        case .string(let one)?: stop = [one]
        case .array(let many)? where many.count <= 4 && many.allSatisfy({ $0.string != nil }): stop = many.map { $0.string! }
        default: throw APIError.invalid("'stop' must be a string or an array of up to 4 strings", param: "stop")
        }
        if let value = body["stream"] {
            guard let flag = value.bool else { throw APIError.invalid("'stream' must be true or false", param: "stream") }
            stream = flag
        }
        if let value = body["stream_options"], !value.isNull {
            guard let options = value.object, options.keys.allSatisfy({ $0 == "include_usage" }) else {
                throw APIError.invalid("'stream_options' takes only {\"include_usage\": bool}", param: "stream_options")
            }
            if let usage = options["include_usage"] {
                guard let flag = usage.bool else { throw APIError.invalid("'stream_options.include_usage' must be true or false", param: "stream_options") }
                includeUsage = flag
            }
        }
        if let value = body["n"], !value.isNull {
            guard value.integer == 1 else { throw APIError.invalid("'n' must be 1: one choice per request", param: "n") }
        }
        if let value = body["top_k"], !value.isNull {
            // llama.cpp's and vLLM's: 0 (llama.cpp) or -1 (vLLM) turns it off.
            guard let count = value.integer, count >= -1, count <= 1 << 30 else {
                throw APIError.invalid("'top_k' must be an integer ≥ 0 (0 or -1: off), got \(value.shortText)", param: "top_k")
            }
            topK = max(0, count)
        }
        if let value = body["min_p"], !value.isNull {
            guard let number = value.number, number >= 0, number <= 1 else {
                throw APIError.invalid("'min_p' must be a number in [0, 1], got \(value.shortText)", param: "min_p")
            }
            minP = Float(number)
        }
        for key in ["presence_penalty", "frequency_penalty"] {
            guard let value = body[key], !value.isNull else { continue }
            guard let number = value.number, number >= -2, number <= 2 else {
                throw APIError.invalid("'\(key)' must be a number in [-2, 2], got \(value.shortText)", param: key)
            }
            if key == "presence_penalty" { presencePenalty = Float(number) } else { frequencyPenalty = Float(number) }
        }
        for key in ["repetition_penalty", "repeat_penalty"] {  // vLLM's name, and llama.cpp's
            guard let value = body[key], !value.isNull else { continue }
            guard let number = value.number, number > 0, number <= 10 else {
                throw APIError.invalid("'\(key)' must be a number in (0, 10] (1: off), got \(value.shortText)", param: key)
            }
            repetitionPenalty = Float(number)
        }
        if let value = body["logit_bias"], !value.isNull {
            guard let entries = value.object else {
                throw APIError.invalid("'logit_bias' must be an object of token id → bias in [-100, 100]", param: "logit_bias")
            }
            for (key, bias) in entries.sorted(by: { $0.key < $1.key }) {
                guard let id = Int32(key), id >= 0 else {
                    throw APIError.invalid("'logit_bias' key '\(key.prefix(20))' is not a token id", param: "logit_bias")
                }
                guard let number = bias.number, number >= -100, number <= 100 else {
                    throw APIError.invalid("'logit_bias' of token \(key) must be a number in [-100, 100], got \(bias.shortText)", param: "logit_bias")
                }
                logitBias[id] = Float(number)
            }
        }
        try readLogprobs(body, chat: chat)
        if let value = body["response_format"], !value.isNull { responseSchema = try Self.responseFormat(value) }
        if let value = body["chat_template_kwargs"], !value.isNull {
            guard chat, let variables = value.object else {
                throw APIError.invalid("'chat_template_kwargs' must be an object of template variables (chat only)", param: "chat_template_kwargs")
            }
            templateVariables = variables.mapValues(Self.templateValue)
        }
        if let value = body["echo"], !value.isNull, value.bool != false {
            throw APIError.invalid("'echo' is not supported", param: "echo")
        }
        if let value = body["suffix"], !value.isNull {
            throw APIError.invalid("'suffix' is not supported", param: "suffix")
        }
    }

    /// Chat: `logprobs` true or false, `top_logprobs` 0…20 (only with `logprobs`). Completions:
    /// `logprobs` an integer 0…5 (the alternatives; OpenAI's legacy shape).
    private mutating func readLogprobs(_ body: [String: JSONValue], chat: Bool) throws {
        let value = body["logprobs"] ?? .null
        if chat {
            var wanted = false
            if !value.isNull {
                guard let flag = value.bool else { throw APIError.invalid("'logprobs' must be true or false", param: "logprobs") }
                wanted = flag
            }
            if let top = body["top_logprobs"], !top.isNull {
                guard let count = top.integer, count >= 0, count <= 20 else {
                    throw APIError.invalid("'top_logprobs' must be an integer in 0…20, got \(top.shortText)", param: "top_logprobs")
                }
                guard wanted else { throw APIError.invalid("'top_logprobs' needs 'logprobs': true", param: "top_logprobs") }
                logprobs = count
            } else if wanted {
                logprobs = 0
            }
        } else {
            if let top = body["top_logprobs"], !top.isNull {
                throw APIError.invalid("'top_logprobs' is a chat field; completions take 'logprobs': 0…5", param: "top_logprobs")
            }
            guard !value.isNull else { return }
            guard let count = value.integer, count >= 0, count <= 5 else {
                throw APIError.invalid("'logprobs' must be an integer in 0…5 for completions, got \(value.shortText)", param: "logprobs")
            }
            logprobs = count
        }
    }

    /// A JSON value as the template sees it (whole numbers as integers, as Python's json reads them).
    static func templateValue(_ value: JSONValue) -> TemplateValue {
        switch value {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .number(let number): return number == number.rounded() && abs(number) < 9e15 ? .int(Int(number)) : .double(number)
        case .string(let text): return .string(text)
        case .array(let items): return .array(items.map(templateValue))
        case .object(let members): return .object(members.keys.sorted().map { ($0, templateValue(members[$0]!)) })
        }
    }

    /// OpenAI's `response_format`: `{"type": "text"}`, `{"type": "json_object"}`, or
    /// `{"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"}}`.
    private static func responseFormat(_ value: JSONValue) throws -> JSONSchema? {
        let param = "response_format"
        guard let format = value.object, let type = format["type"]?.string else {
            throw APIError.invalid("'response_format' must be an object with a 'type' (text, json_object, json_schema)", param: param)
        }
        switch type {
        case "text": return nil
        case "json_object": return JSONSchema.anyObject
        case "json_schema":
            guard let spec = format["json_schema"]?.object else {
                throw APIError.invalid("'response_format.json_schema' must be an object with 'name' and 'schema'", param: param)
            }
            for key in spec.keys.sorted() where !["name", "schema", "strict", "description"].contains(key) {
                throw APIError.invalid("'response_format.json_schema.\(key)' is not a known field", param: param)
            }
            guard let name = spec["name"]?.string, !name.isEmpty else {
                throw APIError.invalid("'response_format.json_schema.name' is required (a string)", param: param)
            }
            guard let schema = spec["schema"] else { return JSONSchema.anyObject }  // OpenAI: a schema-less format is any JSON object
            do { return try JSONSchema(schema) } catch let error as ModelError {
                throw APIError.invalid("'response_format.json_schema.schema' (\(name)): \(error.message)", param: param)
            }
        default:
            throw APIError.invalid("'response_format.type' must be text, json_object or json_schema, got '\(type)'", param: param)
        }
    }

    /// A message as text, and as the template sees it (with `tool_calls`, `tool_call_id`).
    struct Message {
        var plain: ChatMessage
        var structured: TemplateValue
        var carriesTools: Bool
    }

    private static func message(_ value: JSONValue, index: Int) throws -> Message {
        let param = "messages[\(index)]"
        guard let object = value.object, let role = object["role"]?.string else {
            throw APIError.invalid("\(param) must be an object with a string 'role'", param: param)
        }
        guard ["system", "user", "assistant", "developer", "tool"].contains(role) else {
            throw APIError.invalid("\(param).role '\(role)' is not one of system, user, assistant, tool", param: param)
        }
        let plain = try content(object, role: role, param: param)
        var members: [(key: String, value: TemplateValue)] = [("role", .string(plain.role)), ("content", .string(plain.content))]
        var carriesTools = false
        if role == "tool" {
            guard let id = object["tool_call_id"]?.string else { throw APIError.invalid("\(param): a tool message needs 'tool_call_id'", param: param) }
            members.append(("tool_call_id", .string(id)))
            carriesTools = true
        }
        if role == "assistant", let calls = object["tool_calls"], !calls.isNull {
            guard let list = calls.array else { throw APIError.invalid("\(param).tool_calls must be an array", param: param) }
            let structured: [TemplateValue] = try list.enumerated().map { number, call in
                guard let call = call.object, let function = call["function"]?.object, let name = function["name"]?.string,
                      let arguments = function["arguments"]?.string else {
                    throw APIError.invalid("\(param).tool_calls[\(number)] must be {id, type, function: {name, arguments}}", param: param)
                }
                // Templates read the arguments as an object (transformers' convention); the API sends JSON text.
                guard let parsed = try? JSONValue(parsing: Data(arguments.utf8)) else {
                    throw APIError.invalid("\(param).tool_calls[\(number)].function.arguments is not JSON", param: param)
                }
                let named: TemplateValue = .object([("name", .string(name)), ("arguments", templateValue(parsed))])
                return .object([("id", .string(call["id"]?.string ?? "call_\(number)")), ("type", .string("function")), ("function", named),
                                ("name", .string(name)), ("arguments", templateValue(parsed))])
            }
            members.append(("tool_calls", .array(structured)))
            carriesTools = true
        }
        return Message(plain: plain, structured: .object(members), carriesTools: carriesTools)
    }

    /// The message's text: a string, text parts, or nothing (an assistant's tool calls only).
    private static func content(_ object: [String: JSONValue], role: String, param: String) throws -> ChatMessage {
        switch object["content"] {
        case nil where role == "assistant" && object["tool_calls"] != nil, .null? where role == "assistant" && object["tool_calls"] != nil:
            return ChatMessage(role: role, content: "")
        case .string(let text)?:
            return ChatMessage(role: role == "developer" ? "system" : role, content: text)
        case .array(let parts)?:
            // The array form: only text parts.
            var text = ""
            for (number, part) in parts.enumerated() {
                guard let part = part.object, part["type"]?.string == "text", let piece = part["text"]?.string else {
                    throw APIError.invalid("\(param).content[\(number)] must be {\"type\": \"text\", \"text\": …}: only text is supported", param: param)
                }
                text += piece
            }
            return ChatMessage(role: role == "developer" ? "system" : role, content: text)
        default:
            throw APIError.invalid("\(param).content must be a string or an array of text parts", param: param)
        }
    }
}
