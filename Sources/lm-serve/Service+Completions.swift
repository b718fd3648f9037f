import Foundation
import Hummingbird
import Model

/// `/v1/chat/completions` and `/v1/completions`: one request through the engine, answered whole
/// or streamed as server-sent events in OpenAI's chunk format.
extension OpenAIServer {
    func complete(_ request: Request, chat: Bool) async throws -> Response {
        let body = try CompletionRequest(json: try await jsonObject(request), chat: chat, served: modelID)
        // Tools shown to the model (not under tool_choice none); a forced call is constrained to its schema.
        let tools = body.tools.flatMap { $0.choice == .none ? nil : $0 }
        let (prompt, opensReasoning) = try promptIDs(body.input, variables: body.templateVariables, tools: tools?.functions ?? [],
                                                     structured: body.hasToolMessages)
        let forcedCall = try tools?.constraint()
        if forcedCall != nil && body.responseSchema != nil {
            throw APIError.invalid("'response_format' and a forced tool call ('tool_choice') cannot both constrain the answer", param: "tool_choice")
        }
        // A reasoning model's <think>…</think> goes to reasoning_content, whole and streamed.
        let splitter: ReasoningSplitter? = chat && splitsReasoning ? ReasoningSplitter(insideReasoning: opensReasoning) : nil
        let context = engine.decoder.context
        guard prompt.count < context else {
            throw APIError.invalid("the prompt is \(prompt.count) tokens; the context holds \(context) (prompt and answer together)",
                                   param: chat ? "messages" : "prompt")
        }
        let room = context - prompt.count
        if let asked = body.maxTokens, asked > room {
            throw APIError.invalid("max_tokens \(asked) and the prompt's \(prompt.count) tokens exceed the context of \(context); at most \(room) fit",
                                   param: "max_tokens")
        }
        let options = GenerationOptions(maxTokens: body.maxTokens ?? room, temperature: body.temperature, topP: body.topP,
                                        seed: body.seed ?? UInt64.random(in: 0...UInt64.max), topK: body.topK, minP: body.minP,
                                        repetitionPenalty: body.repetitionPenalty, presencePenalty: body.presencePenalty,
                                        frequencyPenalty: body.frequencyPenalty, logitBias: body.logitBias, logprobs: body.logprobs,
                                        responseSchema: forcedCall ?? body.responseSchema)
        let vocabulary = engine.pretrained.model.config.vocabSize
        if let bad = body.logitBias.keys.sorted().first(where: { Int($0) >= vocabulary }) {
            throw APIError.invalid("'logit_bias' names token \(bad); the vocabulary has \(vocabulary)", param: "logit_bias")
        }
        // Log-probabilities reported in the request's shape, the token texts read with the tokenizer.
        guard let tokenizer = engine.pretrained.tokenizer else { throw APIError(status: .internalServerError, message: "the model has no tokenizer") }
        let logprobShapes = LogprobShapes(tokenizer: tokenizer, promptLast: prompt[prompt.count - 1],
                                          promptCharacters: { if case .text(let text) = body.input { text.count } else { 0 } }())
        let wantsLogprobs = body.logprobs != nil
        let (events, continuation) = AsyncStream<ServingEngine.Event>.makeStream()
        // Time to the first token and between tokens, for /metrics, as the engine sends them.
        let metrics = self.metrics, started = DispatchTime.now().uptimeNanoseconds
        let clock = TokenClock()
        let ticket: ServingEngine.Ticket
        do {
            ticket = try engine.submit(ServingEngine.Request(prompt: prompt, options: options, stopStrings: body.stop)) { event in
                switch event {
                case .text:
                    let now = DispatchTime.now().uptimeNanoseconds
                    if let last = clock.swap(now) { metrics.betweenTokens(Double(now - last) * 1e-9) } else { metrics.firstToken(after: Double(now - started) * 1e-9) }
                case .finished(_, let promptTokens, let completionTokens, let cachedTokens):
                    metrics.finished(prompt: promptTokens, cached: cachedTokens, generated: completionTokens)
                case .failed: break
                }
                continuation.yield(event)
                switch event {
                case .finished, .failed: continuation.finish()
                case .text: break
                }
            }
        } catch {
            throw APIError(generation: error, input: chat ? "messages" : "prompt")
        }
        // The client going away (the task cancelled, or the stream dropped) frees the slot.
        continuation.onTermination = { _ in ticket.cancel() }
        let reply = Reply(chat: chat, model: modelID)
        guard body.stream else {
            return try await withTaskCancellationHandler {
                var text = "", reasoning = "", logprobs: [TokenLogprob] = [], shapes = logprobShapes, split = splitter
                func take(_ parts: [ReasoningSplitter.Part]) {
                    for part in parts {
                        switch part {
                        case .reasoning(let piece): reasoning += piece
                        case .content(let piece): text += piece
                        }
                    }
                }
                for await event in events {
                    switch event {
                    case .text(let piece, let pieces):
                        if split != nil { take(split!.append(piece)) } else { text += piece }
                        logprobs += pieces
                    case .finished(let reason, let promptTokens, let completionTokens, let cachedTokens):
                        guard let finish = reason.openAI else { throw APIError(status: .serviceUnavailable, message: "the server is shutting down") }
                        if split != nil { take(split!.finish()) }
                        if let tools, case let (calls, rest) = ToolCalls.parse(text, offered: tools.callable), !calls.isEmpty {
                            let kept = tools.parallel ? calls : Array(calls.prefix(1))
                            return JSONResponse.make(reply.whole(toolCalls: kept, content: rest, finish: "tool_calls",
                                                                 usage: Usage(promptTokens, completionTokens, cached: cachedTokens)))
                        }
                        let reported: [String: Any]? = wantsLogprobs ? (chat ? ["content": shapes.chat(logprobs)] : shapes.legacy(logprobs)) : nil
                        return JSONResponse.make(reply.whole(text: text, finish: finish, usage: Usage(promptTokens, completionTokens, cached: cachedTokens),
                                                             logprobs: reported, reasoning: reasoning.isEmpty ? nil : reasoning))
                    case .failed(let error):
                        throw APIError(generation: error, input: chat ? "messages" : "prompt")
                    }
                }
                throw APIError(status: .internalServerError, message: "generation ended without a result")
            } onCancel: { ticket.cancel() }
        }
        let includeUsage = body.includeUsage
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: ResponseBody { writer in
            func send(_ object: Any) async throws {
                try await writer.write(ByteBuffer(bytes: Data("data: ".utf8) + JSONResponse.data(object) + Data("\n\n".utf8)))
            }
            var shapes = logprobShapes, split = splitter
            // With tools, content goes through the call reader: text as soon as it cannot start a
            // call, calls as tool_calls deltas as they are written.
            var calls = tools.map { ToolCallStream(offered: $0.callable, parallel: $0.parallel) }
            var callIDs: [Int: String] = [:]
            func toolDeltas(_ deltas: [ToolCallStream.Delta]) -> [[String: Any]] {
                deltas.map { delta in
                    switch delta {
                    case .content(let text): return ["content": text]
                    case .call(let index, let name):
                        callIDs[index] = Reply.callID()
                        return ["tool_calls": [["index": index, "id": callIDs[index]!, "type": "function",
                                                "function": ["name": name, "arguments": ""]]]]
                    case .arguments(let index, let text): return ["tool_calls": [["index": index, "function": ["arguments": text]]]]
                    }
                }
            }
            /// The chat deltas of `piece`: content (or tool calls), or reasoning_content while the model thinks.
            func deltas(_ piece: String) -> [[String: Any]] {
                let parts: [ReasoningSplitter.Part] = split != nil ? split!.append(piece) : [.content(piece)]
                return parts.flatMap { part -> [[String: Any]] in
                    switch part {
                    case .reasoning(let text): return [["reasoning_content": text]]
                    case .content(let text): return calls != nil ? toolDeltas(calls!.append(text)) : [["content": text]]
                    }
                }
            }
            do {
                if chat { try await send(reply.chunk(delta: ["role": "assistant", "content": ""], finish: nil)) }
                for await event in events {
                    switch event {
                    case .text(let piece, let pieces):
                        let reported: [String: Any]? = wantsLogprobs ? (chat ? ["content": shapes.chat(pieces)] : shapes.legacy(pieces)) : nil
                        if chat {
                            let parts = deltas(piece)
                            if parts.isEmpty && reported != nil { try await send(reply.chunk(delta: ["content": ""], finish: nil, logprobs: reported)) }
                            for (index, delta) in parts.enumerated() {
                                try await send(reply.chunk(delta: delta, finish: nil, logprobs: index == 0 ? reported : nil))
                            }
                        } else {
                            try await send(reply.chunk(text: piece, finish: nil, logprobs: reported))
                        }
                    case .finished(let reason, let promptTokens, let completionTokens, let cachedTokens):
                        if let finish = reason.openAI {
                            var last: [[String: Any]] = []
                            if split != nil {
                                for part in split!.finish() {
                                    switch part {
                                    case .reasoning(let text): last.append(["reasoning_content": text])
                                    case .content(let text): last += calls != nil ? toolDeltas(calls!.append(text)) : [["content": text]]
                                    }
                                }
                            }
                            var finishing = finish
                            if calls != nil {
                                last += toolDeltas(calls!.finish())
                                // A call cut off by the token budget ends as "length", as OpenAI's do.
                                if calls!.callsSent > 0 && calls!.callsComplete { finishing = "tool_calls" }
                            }
                            for delta in last { try await send(reply.chunk(delta: delta, finish: nil)) }
                            try await send(chat ? reply.chunk(delta: [:], finish: finishing) : reply.chunk(text: "", finish: finishing))
                            if includeUsage { try await send(reply.usageChunk(Usage(promptTokens, completionTokens, cached: cachedTokens))) }
                        } else {
                            try await send(APIError(status: .serviceUnavailable, message: "the server is shutting down").json)
                        }
                    case .failed(let error):
                        try await send(APIError(generation: error, input: chat ? "messages" : "prompt").json)
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                ticket.cancel()  // the client went away mid-stream
                throw error
            }
        })
    }
}

/// When a request's last token arrived (events come from the engine's thread, one at a time).
final class TokenClock: @unchecked Sendable {
    private let lock = NSLock()
    private var last: UInt64?
    /// The previous time (nil for the first token), and `now` kept.
    func swap(_ now: UInt64) -> UInt64? { lock.withLock { defer { last = now }; return last } }
}

extension ServingEngine.FinishReason {
    /// OpenAI's `finish_reason`; nil for a cancelled request (no answer to give).
    var openAI: String? {
        switch self {
        case .stop: "stop"
        case .length: "length"
        case .cancelled: nil
        }
    }
}

/// OpenAI's `usage`; `cached`: prompt tokens a slot's cache already held
/// (`prompt_tokens_details.cached_tokens`).
struct Usage {
    let prompt: Int, completion: Int, cached: Int
    init(_ prompt: Int, _ completion: Int, cached: Int) { (self.prompt, self.completion, self.cached) = (prompt, completion, cached) }
    var json: [String: Any] {
        ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
         "prompt_tokens_details": ["cached_tokens": cached]]
    }
}

/// The response objects of one request, sharing its id and creation time.
struct Reply {
    let chat: Bool
    let model: String
    let id: String
    let created = Int(Date().timeIntervalSince1970)

    init(chat: Bool, model: String) {
        self.chat = chat
        self.model = model
        id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }

    private func object(_ type: String, choices: [[String: Any]]) -> [String: Any] {
        ["id": id, "object": type, "created": created, "model": model, "choices": choices]
    }

    /// `logprobs`: the choice's, in the endpoint's shape (``LogprobShapes``), or nil for null.
    /// `reasoning`: a reasoning model's thinking, as `message.reasoning_content`.
    func whole(text: String, finish: String, usage: Usage, logprobs: [String: Any]? = nil, reasoning: String? = nil) -> [String: Any] {
        var message: [String: Any] = ["role": "assistant", "content": text]
        if let reasoning { message["reasoning_content"] = reasoning }
        let choice: [String: Any] = chat
            ? ["index": 0, "message": message, "finish_reason": finish, "logprobs": logprobs ?? NSNull()]
            : ["index": 0, "text": text, "finish_reason": finish, "logprobs": logprobs ?? NSNull()]
        var result = object(chat ? "chat.completion" : "text_completion", choices: [choice])
        result["usage"] = usage.json
        return result
    }

    /// A chat answer that calls tools: `message.tool_calls` (content null when there is no text).
    func whole(toolCalls: [ToolCall], content: String, finish: String, usage: Usage) -> [String: Any] {
        let message: [String: Any] = ["role": "assistant", "content": content.isEmpty ? NSNull() : content,
                                      "tool_calls": toolCalls.enumerated().map { Self.toolCall($1, index: $0) }]
        var result = object("chat.completion", choices: [["index": 0, "message": message, "finish_reason": finish, "logprobs": NSNull()]])
        result["usage"] = usage.json
        return result
    }

    /// One tool call in OpenAI's shape, with a fresh id.
    static func toolCall(_ call: ToolCall, index: Int) -> [String: Any] {
        ["index": index, "id": callID(), "type": "function", "function": ["name": call.name, "arguments": call.arguments]]
    }

    /// A fresh tool call id, `call_` and 24 hexadecimal digits.
    static func callID() -> String { "call_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24) }

    func chunk(delta: [String: Any], finish: String?, logprobs: [String: Any]? = nil) -> [String: Any] {
        var choice: [String: Any] = ["index": 0, "delta": delta, "finish_reason": finish ?? NSNull()]
        if let logprobs { choice["logprobs"] = logprobs }
        return object("chat.completion.chunk", choices: [choice])
    }

    func chunk(text: String, finish: String?, logprobs: [String: Any]? = nil) -> [String: Any] {
        object("text_completion", choices: [["index": 0, "text": text, "finish_reason": finish ?? NSNull(), "logprobs": logprobs ?? NSNull()]])
    }

    func usageChunk(_ usage: Usage) -> [String: Any] {
        var result = object(chat ? "chat.completion.chunk" : "text_completion", choices: [])
        result["usage"] = usage.json
        return result
    }
}
