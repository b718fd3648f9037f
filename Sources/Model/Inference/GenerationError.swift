/// Why a generation request (``Generator``, ``ChatSession``, ``ServingEngine``, ``DecodeState``)
/// cannot run or stopped, as cases with fields: a command line names the flag, a server the
/// field and the HTTP status, without parsing a message.
public enum GenerationError: Error, Equatable, CustomStringConvertible {
    /// An option out of its range; `problem` says what it must be (`"must be in [0, 1], got 3"`).
    case invalidOption(GenerationOption, problem: String)
    /// The prompt has no tokens.
    case emptyPrompt
    /// The prompt (with room for at least one answer token) does not fit the context.
    case promptTooLong(tokens: Int, context: Int)
    /// A prompt id outside the vocabulary.
    case tokenOutsideVocabulary(index: Int, id: Int32, vocabularySize: Int)
    /// The server's queue is full (``ServingEngine``).
    case queueFull(limit: Int)
    /// The server is stopping and takes no more work.
    case shuttingDown
    /// The model produced a non-finite logit (its weights or inputs are broken).
    case nonFiniteLogit(token: Int, index: Int, value: Float)
    /// The logit processors left no token to sample (a schema this vocabulary cannot continue,
    /// or a bias that bans everything).
    case noTokenAllowed(afterTokens: Int, constrained: Bool)
    /// A feature the request needs is missing (a response schema without a tokenizer, say).
    case unsupported(String)

    public var description: String {
        switch self {
        case .invalidOption(let option, let problem): return "\(option.flag) \(problem)"
        case .emptyPrompt: return "the prompt has no tokens (generation needs at least one)"
        case .promptTooLong(let tokens, let context): return "the prompt is \(tokens) tokens; the context holds \(context) (prompt and answer together)"
        case .tokenOutsideVocabulary(let index, let id, let size): return "prompt id \(id) at index \(index) is outside the vocabulary of \(size)"
        case .queueFull(let limit): return "the server is busy: \(limit) requests are already waiting"
        case .shuttingDown: return "the server is shutting down"
        case .nonFiniteLogit(let token, let index, let value):
            return "generation stopped at token \(token): logit \(index) is \(value); the model's weights or inputs produce non-finite values"
        case .noTokenAllowed(let count, let constrained):
            return constrained
                ? "no token of the vocabulary continues the JSON answer after \(count) tokens (the schema needs text these pieces cannot write)"
                : "every token is excluded by the logit bias after \(count) tokens"
        case .unsupported(let what): return what
        }
    }
}

/// The options of ``GenerationOptions``, with their names on the command line and in the API.
public enum GenerationOption: String, Sendable, CaseIterable {
    case maxTokens, temperature, topP, topK, minP, repetitionPenalty, presencePenalty, frequencyPenalty, logitBias, topLogprobs

    /// The command line's name without dashes (`top-k`).
    public var flag: String {
        rawValue.reduce(into: "") { name, character in
            if character.isUppercase { name += "-" + character.lowercased() } else { name.append(character) }
        }
    }

    /// The OpenAI API's field (`top_k`).
    public var field: String { flag.replacingOccurrences(of: "-", with: "_") }
}
