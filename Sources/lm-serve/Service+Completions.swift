import Foundation
import Hummingbird
import Model

/// `/v1/chat/completions` and `/v1/completions`: one request through the engine, answered whole
/// or streamed as server-sent events in OpenAI's chunk format.
extension OpenAIServer {
    func complete(_ request: Request, chat: Bool) async throws -> Response {
        let body = try CompletionRequest(json: try await jsonObject(request), chat: chat, served: modelID)
        let prompt = try promptIDs(body.input)
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
                                        responseSchema: body.responseSchema)
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
        let ticket: ServingEngine.Ticket
        do {
            ticket = try engine.submit(ServingEngine.Request(prompt: prompt, options: options, stopStrings: body.stop)) { event in
                continuation.yield(event)
                switch event {
                case .finished, .failed: continuation.finish()
                case .text: break
                }
            }
        } catch let error as ServingEngine.QueueFull {
            throw APIError(status: .tooManyRequests, message: error.description)
        } catch {
            throw APIError.invalid("\(error)")
        }
        // The client going away (the task cancelled, or the stream dropped) frees the slot.
        continuation.onTermination = { _ in ticket.cancel() }
        let reply = Reply(chat: chat, model: modelID)
        guard body.stream else {
            return try await withTaskCancellationHandler {
                var text = "", logprobs: [TokenLogprob] = [], shapes = logprobShapes
                for await event in events {
                    switch event {
                    case .text(let piece, let pieces):
                        text += piece
                        logprobs += pieces
                    case .finished(let reason, let promptTokens, let completionTokens, let cachedTokens):
                        guard let finish = reason.openAI else { throw APIError(status: .serviceUnavailable, message: "the server is shutting down") }
                        let reported: [String: Any]? = wantsLogprobs ? (chat ? ["content": shapes.chat(logprobs)] : shapes.legacy(logprobs)) : nil
                        return JSONResponse.make(reply.whole(text: text, finish: finish, usage: Usage(promptTokens, completionTokens, cached: cachedTokens), logprobs: reported))
                    case .failed(let message):
                        throw APIError(status: .internalServerError, message: message)
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
            var shapes = logprobShapes
            do {
                if chat { try await send(reply.chunk(delta: ["role": "assistant", "content": ""], finish: nil)) }
                for await event in events {
                    switch event {
                    case .text(let piece, let pieces):
                        let reported: [String: Any]? = wantsLogprobs ? (chat ? ["content": shapes.chat(pieces)] : shapes.legacy(pieces)) : nil
                        try await send(chat ? reply.chunk(delta: ["content": piece], finish: nil, logprobs: reported)
                                            : reply.chunk(text: piece, finish: nil, logprobs: reported))
                    case .finished(let reason, let promptTokens, let completionTokens, let cachedTokens):
                        if let finish = reason.openAI {
                            try await send(chat ? reply.chunk(delta: [:], finish: finish) : reply.chunk(text: "", finish: finish))
                            if includeUsage { try await send(reply.usageChunk(Usage(promptTokens, completionTokens, cached: cachedTokens))) }
                        } else {
                            try await send(APIError(status: .serviceUnavailable, message: "the server is shutting down").json)
                        }
                    case .failed(let message):
                        try await send(APIError(status: .internalServerError, message: message).json)
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
    func whole(text: String, finish: String, usage: Usage, logprobs: [String: Any]? = nil) -> [String: Any] {
        let choice: [String: Any] = chat
            ? ["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": finish, "logprobs": logprobs ?? NSNull()]
            : ["index": 0, "text": text, "finish_reason": finish, "logprobs": logprobs ?? NSNull()]
        var result = object(chat ? "chat.completion" : "text_completion", choices: [choice])
        result["usage"] = usage.json
        return result
    }

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
