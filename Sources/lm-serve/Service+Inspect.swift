import Foundation
import Hummingbird
import Model

/// `/v1/inspect`: one forward over a prompt with every layer's attention kept (``/Model/ForwardTrace``),
/// for the page's inside view: the tokens, the logits after the last one, and one layer's
/// attention weights per head.
extension OpenAIServer {
    /// Longest prompt inspected: its attention maps are `heads · T²` numbers per layer.
    static let inspectLimit = 256

    func inspect(_ request: Request) async throws -> Response {
        let body = try await jsonObject(request)
        for key in body.keys where !["messages", "prompt", "layer", "model", "temperature"].contains(key) {
            throw APIError.invalid("unknown field '\(key)'", param: key)
        }
        let input: CompletionRequest.Input
        if body["messages"] != nil {
            input = try CompletionRequest(json: body.filter { $0.key == "messages" || $0.key == "model" }, chat: true, served: modelID).input
        } else {
            input = try CompletionRequest(json: body.filter { $0.key == "prompt" || $0.key == "model" }, chat: false, served: modelID).input
        }
        let ids = try promptIDs(input).ids
        guard !ids.isEmpty else { throw APIError.invalid("the prompt has no tokens", param: "prompt") }
        guard ids.count <= Self.inspectLimit else {
            throw APIError.invalid("the prompt is \(ids.count) tokens; inspection takes at most \(Self.inspectLimit)", param: "messages")
        }
        let config = engine.pretrained.model.config
        var layer = 0
        if let value = body["layer"] {
            guard let number = value.integer, number >= 0, number < config.numLayers else {
                throw APIError.invalid("'layer' must be an integer in 0..<\(config.numLayers), got \(value.shortText)", param: "layer")
            }
            layer = number
        }
        let trace: ForwardTrace
        do { trace = try await engine.perform { try $0.model.trace(tokens: ids) } } catch { throw APIError(generation: error, input: "prompt") }
        let tokenizer = engine.pretrained.tokenizer!
        var previous: Int32?
        let tokens: [[String: Any]] = ids.map { id in
            defer { previous = id }
            let bytes = (try? tokenizer.pieceBytes(id, after: previous)) ?? []
            return ["id": Int(id), "text": String(decoding: bytes, as: UTF8.self)]
        }
        let t = ids.count
        // Four decimals are more than a heat map shows, and a quarter of the JSON.
        let attention = trace.attention[layer].map { head in
            (0..<t).map { row in head[(row * t)..<((row + 1) * t)].map { Double(($0 * 10_000).rounded()) / 10_000 } }
        }
        let logits = trace.nextTokenLogits
        let top = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(100).map { id -> [String: Any] in
            let bytes = (try? tokenizer.pieceBytes(Int32(id), after: ids.last)) ?? []
            return ["id": id, "text": String(decoding: bytes, as: UTF8.self), "logit": logits[id]]
        }
        let raw = logits.withUnsafeBufferPointer { Data(buffer: $0) }  // little-endian on every machine we build for
        return JSONResponse.make([
            "model": modelID, "tokens": tokens, "layers": config.numLayers, "heads": config.numHeads, "layer": layer,
            "attention": attention, "vocab_size": config.vocabSize, "logits": raw.base64EncodedString(), "top": Array(top),
        ])
    }
}
