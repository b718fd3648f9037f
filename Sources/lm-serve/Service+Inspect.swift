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
        try Self.refuseUnknown(body, allowed: ["messages", "prompt", "layer", "model", "temperature"])
        let ids = try inspectedIDs(body)
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
        let tokens = tokenList(ids)
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
