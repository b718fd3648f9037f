import ChatTemplate
import Dispatch
import Tokenizer

/// A multi-turn conversation with a model through its chat template, keeping the KV cache
/// across turns: each turn renders the whole conversation, finds how much of it the cache
/// already holds (the tokens of every earlier turn, usually) and prefills only the rest.
///
/// When a turn would not fit in the context, the oldest turns after the system message are
/// dropped and the cache is rebuilt (``Turn/droppedMessages`` says how many).
public final class ChatSession {
    public let pretrained: PretrainedModel
    public private(set) var messages: [ChatMessage] = []
    private let template: ChatTemplate
    private let tokenizer: any TextTokenizer
    private let session: InferenceSession
    /// The ids in the cache, position by position.
    private var cached: [Int32] = []

    /// What one answer cost and why it ended.
    public struct Turn: Sendable {
        public var text: String
        public var promptTokens: Int
        /// Prompt tokens the cache already held (not computed again).
        public var reusedTokens: Int
        public var generatedTokens: Int
        public var prefillSeconds: Double
        public var decodeSeconds: Double
        public var ending: GenerationReport.Ending
        public var droppedMessages: Int
    }

    /// Throws when the model has no tokenizer or no chat template (name one with
    /// `chatTemplatePath` when loading).
    /// `context` caps the tokens held (default: the model's context length).
    public init(_ pretrained: PretrainedModel, system: String? = nil, context: Int? = nil) throws {
        guard let tokenizer = pretrained.tokenizer else { throw ModelError("\(pretrained.path): no tokenizer; chat needs one") }
        guard let template = pretrained.chatTemplate else {
            throw ModelError("\(pretrained.path): no chat template in the model's files; give one with --chat-template FILE")
        }
        self.pretrained = pretrained
        self.tokenizer = tokenizer
        self.template = template
        session = InferenceSession(model: pretrained.model, context: context)
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
    }

    /// The prompt ids of the conversation so far, ready for the assistant's answer.
    public func promptIDs() throws -> [Int32] {
        let text = try template.render(messages, addGenerationPrompt: true, bosToken: pretrained.bosText, eosToken: pretrained.eosText)
        return tokenizer.encodeChat(text, bos: pretrained.bosText, eos: pretrained.eosText)
    }

    /// Adds the user's message and generates the answer, streaming its text to `onText`
    /// (return false to stop it, e.g. on Ctrl-C). The answer joins the conversation.
    public func respond(to user: String, options: GenerationOptions, onText: (String) -> Bool) throws -> Turn {
        try answer(messages + [ChatMessage(role: "user", content: user)], options: options, onText: onText)
    }

    /// Answers `conversation` (any messages, the last usually the user's), which replaces the
    /// session's: the cache is reused as far as the new prompt's tokens agree with it, so a
    /// client that sends the whole conversation each time (as the OpenAI API does) pays only for
    /// what is new. The answer joins the conversation.
    public func answer(_ conversation: [ChatMessage], options: GenerationOptions, onText: (String) -> Bool) throws -> Turn {
        try options.validate()
        let previous = messages
        messages = conversation
        do { return try generateAnswer(options: options, onText: onText) } catch {
            messages = previous
            throw error
        }
    }

    private func generateAnswer(options: GenerationOptions, onText: (String) -> Bool) throws -> Turn {
        var dropped = 0
        var prompt = try promptIDs()
        let context = session.context
        // Leave room for at least a short answer; drop the oldest turns (never the system message).
        while prompt.count + min(options.maxTokens, 64) > context {
            let first = messages.first?.role == "system" ? 1 : 0
            guard messages.count - first > 1 else {
                throw ModelError("the message gives \(prompt.count) prompt tokens; the model's context holds \(context)")
            }
            messages.remove(at: first)
            dropped += 1
            prompt = try promptIDs()
        }
        var reused = zip(prompt, cached).prefix { $0 == $1 }.count
        if reused == prompt.count { reused -= 1 }  // the last prompt token must run to give logits
        reused = session.rewind(to: reused)  // 0 when a sliding layer no longer holds the window before it
        cached = Array(cached.prefix(reused))

        let prefillStart = DispatchTime.now().uptimeNanoseconds
        let promptLogits = try session.append(Array(prompt[reused...]))
        cached = prompt
        let prefillSeconds = Double(DispatchTime.now().uptimeNanoseconds - prefillStart) * 1e-9

        var state = try DecodeState(prompt: prompt, options: options, vocabularySize: pretrained.model.config.vocabSize, tokenizer: tokenizer)
        var text = "", generated = 0
        var ending = GenerationReport.Ending.maxTokens
        let decodeStart = DispatchTime.now().uptimeNanoseconds
        if options.maxTokens > 0 {
            var step = try promptLogits.withUnsafeBufferPointer { try state.advance($0, roomLeft: session.remaining > 0) }
            while true {
                generated += 1  // a stop token counts: the model produced it
                text += step.text
                if !onText(step.text) {
                    ending = .stoppedByCaller
                    break
                }
                if let finish = step.finish {
                    if case .stopToken(let token) = finish { ending = .stopToken(token) }
                    if finish == .documentComplete { ending = .documentComplete }
                    break
                }
                // The step's logits are a view of the session's buffer: read in place, not copied.
                let logits = try session.step(step.token)
                cached.append(step.token)
                step = try state.advance(logits, roomLeft: session.remaining > 0)
            }
        }
        messages.append(ChatMessage(role: "assistant", content: text))
        return Turn(text: text, promptTokens: prompt.count, reusedTokens: reused, generatedTokens: generated,
                    prefillSeconds: prefillSeconds, decodeSeconds: Double(DispatchTime.now().uptimeNanoseconds - decodeStart) * 1e-9,
                    ending: ending, droppedMessages: dropped)
    }

    /// Starts the conversation again (the system message stays).
    public func reset() {
        messages.removeAll { $0.role != "system" }
        session.reset()
        cached = []
    }
}
