import ChatTemplate
import Foundation
import Hummingbird
import NIOCore
import Model
import Tokenizer

/// The routes: OpenAI's completions, models and health, the inspection endpoint and the page,
/// over one ``ServingEngine``.
struct OpenAIServer: Sendable {
    let engine: ServingEngine
    /// The name clients use in `model`.
    let modelID: String
    /// Largest request body, in bytes.
    let maxBody: Int
    /// The page at `/`, or why it could not be read.
    let page: Result<Data, APIError>
    let metrics: ServerMetrics

    func routes(_ router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in try page.get().htmlResponse }
        router.get("/health") { _, _ in
            let load = engine.load
            return JSONResponse.make(["status": "ok", "model": modelID, "slots": engine.decoder.slotCount,
                                      "active": load.active, "queued": load.queued])
        }
        router.get("/metrics") { _, _ in
            let load = engine.load
            let text = metrics.text(slots: engine.decoder.slotCount, active: load.active, queued: load.queued)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/v1/models") { _, _ in
            JSONResponse.make(["object": "list", "data": [["id": modelID, "object": "model", "created": 0, "owned_by": "swiftlm"]]])
        }
        router.post("/v1/chat/completions") { request, _ in try await complete(request, chat: true) }
        router.post("/v1/completions") { request, _ in try await complete(request, chat: false) }
        router.post("/v1/inspect") { request, _ in try await inspect(request) }
        router.post("/v1/inspect/lens") { request, _ in try await lens(request) }
        router.post("/v1/inspect/attribution") { request, _ in try await attribution(request) }
        router.post("/v1/inspect/patch") { request, _ in try await patch(request) }
    }

    /// The body as a JSON object: 413 over the limit, 400 for invalid UTF-8 or JSON.
    func jsonObject(_ request: Request) async throws -> [String: JSONValue] {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: maxBody) } catch is NIOTooManyBytesError {
            throw APIError(status: .contentTooLarge, message: "the request body is over the limit of \(maxBody) bytes")
        }
        let bytes = Data(buffer.readableBytesView)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw APIError.invalid("the request body is not valid UTF-8")
        }
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: bytes) } catch {
            throw APIError.invalid("the request body is not valid JSON (\(Self.reason(error)))")
        }
        guard let object = value.object else { throw APIError.invalid("the request body must be a JSON object") }
        return object
    }

    private static func reason(_ error: Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            return (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String ?? context.debugDescription
        }
        return "\(error)"
    }

    /// The prompt's ids: the conversation through the chat template (with the generation prompt
    /// and the request's template variables), or the text as a plain prompt; and whether the
    /// rendered prompt ends inside a reasoning block (a template that opens `<think>` itself).
    func promptIDs(_ input: CompletionRequest.Input, variables: [String: TemplateValue] = [:], tools: [ToolFunction] = [],
                   structured: Bool = false) throws -> (ids: [Int32], opensReasoning: Bool) {
        let pretrained = engine.pretrained
        guard let tokenizer = pretrained.tokenizer else { throw APIError(status: .internalServerError, message: "the model has no tokenizer") }
        switch input {
        case .text(let text):
            return (tokenizer.encodePrompt(text), false)
        case .chat(let messages, let structuredMessages):
            guard let template = pretrained.chatTemplate else {
                throw APIError.invalid("the model has no chat template; use /v1/completions with a prompt", param: "messages")
            }
            let text: String
            do {
                if variables.isEmpty && tools.isEmpty && !structured {
                    text = try template.render(messages, addGenerationPrompt: true, bosToken: pretrained.bosText, eosToken: pretrained.eosText)
                } else {
                    // Tools: the template's own rendering when it knows them, else the generic prompt in the system message.
                    var conversation = structuredMessages
                    let rendersTools = template.source.contains("tools")
                    if !tools.isEmpty && !rendersTools {
                        let instruction = ToolCalls.genericPrompt(for: tools)
                        if case .object(let members)? = conversation.first, members.contains(where: { $0.key == "role" && $0.value == .string("system") }) {
                            conversation[0] = .object(members.map { $0.key == "content" ? ($0.key, .string(Self.text($0.value) + "\n\n" + instruction)) : $0 })
                        } else {
                            conversation.insert(.object([("role", .string("system")), ("content", .string(instruction))]), at: 0)
                        }
                    }
                    text = try template.render(messages: conversation, tools: rendersTools && !tools.isEmpty ? tools.map { CompletionRequest.templateValue($0.json) } : nil,
                                               addGenerationPrompt: true, bosToken: pretrained.bosText, eosToken: pretrained.eosText, variables: variables)
                }
            } catch {
                throw APIError.invalid("the chat template cannot render these messages: \(error)", param: "messages")
            }
            let opens = text.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(ReasoningSplitter.open)
            return (tokenizer.encodeChat(text, bos: pretrained.bosText, eos: pretrained.eosText), opens)
        }
    }

    private static func text(_ value: TemplateValue) -> String { if case .string(let text) = value { text } else { "" } }

    /// Whether answers are split into reasoning and content: the model's chat template knows
    /// `<think>` (Qwen 3 and other reasoning models).
    var splitsReasoning: Bool { engine.pretrained.chatTemplate?.source.contains(ReasoningSplitter.open) ?? false }
}

extension Data {
    var htmlResponse: Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: self)))
    }
}
