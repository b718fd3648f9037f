import ChatTemplate
import Model

/// A chat request's `tools`, `tool_choice` and `parallel_tool_calls`, checked: every problem is
/// a 400 naming the field.
struct ToolRequest {
    enum Choice: Equatable {
        /// The model answers or calls as it likes (the default with tools).
        case auto
        /// No tools: they are not shown to the model.
        case none
        /// A call to one of the tools, constrained to its schema.
        case required
        /// A call to this function, constrained to its schema.
        case named(String)
    }

    var functions: [ToolFunction]
    var choice: Choice
    var parallel: Bool

    /// Nil when the request has no `tools`.
    init?(_ body: [String: JSONValue]) throws {
        guard let value = body["tools"], !value.isNull else {
            if let choice = body["tool_choice"], !choice.isNull, choice.string != "none", choice.string != "auto" {
                throw APIError.invalid("'tool_choice' needs 'tools'", param: "tool_choice")
            }
            return nil
        }
        guard let list = value.array, !list.isEmpty else { throw APIError.invalid("'tools' must be a non-empty array of functions", param: "tools") }
        functions = try list.enumerated().map { index, tool in
            let param = "tools[\(index)]"
            guard let object = tool.object, object["type"]?.string == "function", let function = object["function"]?.object else {
                throw APIError.invalid("\(param) must be {\"type\": \"function\", \"function\": {…}}", param: "tools")
            }
            guard let name = function["name"]?.string, !name.isEmpty,
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                throw APIError.invalid("\(param).function.name is required: letters, digits, '_' or '-'", param: "tools")
            }
            if let parameters = function["parameters"] {
                do { _ = try JSONSchema(parameters) } catch let error as ModelError {
                    throw APIError.invalid("\(param).function.parameters (\(name)): \(error.message)", param: "tools")
                }
            }
            return ToolFunction(name: name, description: function["description"]?.string, parameters: function["parameters"])
        }
        if Set(functions.map(\.name)).count != functions.count { throw APIError.invalid("'tools' names a function twice", param: "tools") }
        switch body["tool_choice"] {
        case nil, .null?, .string("auto")?: choice = .auto
        case .string("none")?: choice = .none
        case .string("required")?: choice = .required
        case .object(let object)?:
            guard object["type"]?.string == "function", let name = object["function"]?.object?["name"]?.string else {
                throw APIError.invalid("'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": …}}", param: "tool_choice")
            }
            guard functions.contains(where: { $0.name == name }) else {
                throw APIError.invalid("'tool_choice' names '\(name)', which is not among the tools", param: "tool_choice")
            }
            choice = .named(name)
        default:
            throw APIError.invalid("'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": …}}", param: "tool_choice")
        }
        parallel = true
        if let value = body["parallel_tool_calls"], !value.isNull {
            guard let flag = value.bool else { throw APIError.invalid("'parallel_tool_calls' must be true or false", param: "parallel_tool_calls") }
            parallel = flag
        }
    }

    /// The functions a call may name under the choice.
    var callable: [ToolFunction] {
        switch choice {
        case .named(let name): return functions.filter { $0.name == name }
        case .none: return []
        default: return functions
        }
    }

    /// The schema of a forced call (`required` or a named function), else nil.
    func constraint() throws -> JSONSchema? {
        switch choice {
        case .required, .named: return try ToolCalls.constraint(for: callable)
        default: return nil
        }
    }
}
