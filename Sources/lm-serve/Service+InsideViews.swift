import Foundation
import Hummingbird
import Model

/// The views inside the model behind the page's "Inside the model" tab, one forward each with
/// every intermediate kept: `/v1/inspect/lens` (the logit lens), `/v1/inspect/attribution`
/// (direct logit attribution) and `/v1/inspect/patch` (activation patching). Computed on the
/// engine's thread between decoding steps, for what is asked only, with the costs bounded by
/// ``OpenAIServer/inspectLimit`` and ``OpenAIServer/patchLimit``.
extension OpenAIServer {
    /// Longest prompt patched: (layers + 1) · T stream runs, plus one per head and block.
    static let patchLimit = 48
    /// Positions the logit lens reads when none are asked: the last ones.
    static let lensDefaultPositions = 16

    func lens(_ request: Request) async throws -> Response {
        let body = try await jsonObject(request)
        try Self.refuseUnknown(body, allowed: ["messages", "prompt", "model", "positions", "top"])
        let ids = try inspectedIDs(body)
        let t = ids.count
        var positions = Array(max(0, t - Self.lensDefaultPositions)..<t)
        if let value = body["positions"] {
            guard let list = value.array, !list.isEmpty, list.count <= Self.inspectLimit,
                  case let numbers = list.compactMap(\.integer), numbers.count == list.count, numbers.allSatisfy({ (0..<t).contains($0) }) else {
                throw APIError.invalid("'positions' must be a non-empty array of positions in 0..<\(t)", param: "positions")
            }
            positions = numbers
        }
        let top = try Self.integer(body, "top", in: 1...10, default: 3)
        let wanted = positions
        let lens: LogitLens = try await compute { try LogitLens(try InspectedForward($0.model, tokens: ids), positions: wanted, top: top) }
        let name = tokenNamer()
        return JSONResponse.make([
            "model": modelID, "tokens": tokenList(ids), "layers": lens.layers, "positions": lens.positions,
            "answers": lens.answers.map(name), "settled": lens.settledLayer.map { $0 as Any? ?? NSNull() },
            "cells": lens.cells.map { row in
                row.map { cell -> [String: Any] in
                    ["top": cell.top.map { name($0.token).merging(["p": Self.rounded($0.probability)]) { $1 } },
                     "answer_p": Self.rounded(cell.answerProbability), "answer_rank": cell.answerRank]
                }
            },
        ])
    }

    func attribution(_ request: Request) async throws -> Response {
        let body = try await jsonObject(request)
        try Self.refuseUnknown(body, allowed: ["messages", "prompt", "model", "token", "position"])
        let ids = try inspectedIDs(body)
        let config = engine.pretrained.model.config
        let position = try Self.integer(body, "position", in: 0...(ids.count - 1), default: ids.count - 1)
        let asked: Int32? = try body["token"].map { _ in Int32(try Self.integer(body, "token", in: 0...(config.vocabSize - 1), default: 0)) }
        let parts: DirectLogitAttribution = try await compute { pretrained in
            let run = try InspectedForward(pretrained.model, tokens: ids)
            return try DirectLogitAttribution(run, token: asked ?? run.prediction(at: position), position: position)
        }
        return JSONResponse.make([
            "model": modelID, "tokens": tokenList(ids), "position": position, "token": tokenNamer()(parts.token),
            "logit": parts.logit, "total": parts.total, "final_scale": parts.finalScale, "embedding": parts.embedding,
            "attention": parts.attention, "feed_forward": parts.feedForward, "heads": parts.heads,
            "softcapped": config.architecture.finalLogitSoftcap != nil,
        ])
    }

    func patch(_ request: Request) async throws -> Response {
        let body = try await jsonObject(request)
        try Self.refuseUnknown(body, allowed: ["prompt", "corrupted_prompt", "model", "answer", "components"])
        guard let clean = body["prompt"]?.string, let corrupted = body["corrupted_prompt"]?.string else {
            throw APIError.invalid("'prompt' and 'corrupted_prompt' are required strings", param: body["prompt"]?.string == nil ? "prompt" : "corrupted_prompt")
        }
        let cleanIDs = try promptIDs(.text(clean)).ids, corruptedIDs = try promptIDs(.text(corrupted)).ids
        guard !cleanIDs.isEmpty else { throw APIError.invalid("the prompt has no tokens", param: "prompt") }
        guard cleanIDs.count == corruptedIDs.count else {
            throw APIError.invalid("'prompt' is \(cleanIDs.count) tokens and 'corrupted_prompt' \(corruptedIDs.count); patching needs the same number",
                                   param: "corrupted_prompt")
        }
        guard cleanIDs.count <= Self.patchLimit else {
            throw APIError.invalid("the prompts are \(cleanIDs.count) tokens; patching takes at most \(Self.patchLimit)", param: "prompt")
        }
        let config = engine.pretrained.model.config, t = cleanIDs.count
        let answer: Int32? = try body["answer"].map { _ in Int32(try Self.integer(body, "answer", in: 0...(config.vocabSize - 1), default: 0)) }
        var components = false
        if let value = body["components"] {
            guard let flag = value.bool else { throw APIError.invalid("'components' must be true or false", param: "components") }
            components = flag
        }
        var sites = ActivationPatching.streamGrid(layers: config.numLayers, length: t)
        if components {
            sites += (0..<config.numLayers).flatMap { layer in (0..<config.numHeads).map { ActivationPatching.Site.head(layer: layer, head: $0) } }
            sites += (0..<config.numLayers).map { ActivationPatching.Site.feedForward(layer: $0) }
        }
        let patched = sites
        let patching: ActivationPatching = try await compute { pretrained in
            try ActivationPatching(pretrained.model, clean: cleanIDs, corrupted: corruptedIDs, sites: patched, answer: answer)
        }
        let recovered = patching.outcomes.map { Self.rounded(patching.recovered($0)) }
        let name = tokenNamer()
        var result: [String: Any] = [
            "model": modelID, "tokens": tokenList(cleanIDs), "corrupted_tokens": tokenList(corruptedIDs),
            "answer": name(patching.cleanAnswer), "corrupted_answer": name(patching.corruptedAnswer),
            "clean_p": Self.rounded(patching.clean.probability), "corrupted_p": Self.rounded(patching.corrupted.probability),
            "stream": (0...config.numLayers).map { layer in Array(recovered[(layer * t)..<((layer + 1) * t)]) },
        ]
        if components {
            let offset = (config.numLayers + 1) * t, heads = config.numHeads
            result["heads"] = (0..<config.numLayers).map { Array(recovered[(offset + $0 * heads)..<(offset + ($0 + 1) * heads)]) }
            result["feed_forward"] = Array(recovered[(offset + config.numLayers * heads)...])
        }
        return JSONResponse.make(result)
    }

    // MARK: Shared by the views

    /// The ids of a body's `messages` (rendered with the chat template) or `prompt`, checked.
    func inspectedIDs(_ body: [String: JSONValue]) throws -> [Int32] {
        let input: CompletionRequest.Input
        if body["messages"] != nil {
            input = try CompletionRequest(json: body.filter { $0.key == "messages" || $0.key == "model" }, chat: true, served: modelID).input
        } else {
            input = try CompletionRequest(json: body.filter { $0.key == "prompt" || $0.key == "model" }, chat: false, served: modelID).input
        }
        let ids = try promptIDs(input).ids
        guard !ids.isEmpty else { throw APIError.invalid("the prompt has no tokens", param: "prompt") }
        guard ids.count <= Self.inspectLimit else {
            throw APIError.invalid("the prompt is \(ids.count) tokens; inspection takes at most \(Self.inspectLimit)", param: body["messages"] != nil ? "messages" : "prompt")
        }
        return ids
    }

    /// Runs `body` on the engine's thread; errors as the API's.
    func compute<T: Sendable>(_ body: @escaping @Sendable (PretrainedModel) throws -> T) async throws -> T {
        do { return try await engine.perform(body) } catch let error as ModelError {
            throw APIError.invalid(error.message, param: nil)
        } catch { throw APIError(generation: error, input: "prompt") }
    }

    /// `{"id", "text"}` for each token, the text as it follows the one before.
    func tokenList(_ ids: [Int32]) -> [[String: Any]] {
        let tokenizer = engine.pretrained.tokenizer!
        var previous: Int32?
        return ids.map { id in
            defer { previous = id }
            return ["id": Int(id), "text": String(decoding: (try? tokenizer.pieceBytes(id, after: previous)) ?? [], as: UTF8.self)]
        }
    }

    /// `{"id", "text"}` of one token on its own.
    func tokenNamer() -> (Int32) -> [String: Any] {
        let tokenizer = engine.pretrained.tokenizer!
        return { id in ["id": Int(id), "text": String(decoding: (try? tokenizer.pieceBytes(id, after: nil)) ?? [], as: UTF8.self)] }
    }

    static func refuseUnknown(_ body: [String: JSONValue], allowed: Set<String>) throws {
        if let key = body.keys.sorted().first(where: { !allowed.contains($0) }) { throw APIError.invalid("unknown field '\(key)'", param: key) }
    }

    static func integer(_ body: [String: JSONValue], _ key: String, in range: ClosedRange<Int>, default value: Int) throws -> Int {
        guard let field = body[key] else { return value }
        guard let number = field.integer, range.contains(number) else {
            throw APIError.invalid("'\(key)' must be an integer in \(range.lowerBound)...\(range.upperBound), got \(field.shortText)", param: key)
        }
        return number
    }

    /// Five decimals: more than any picture shows.
    static func rounded(_ value: Double) -> Double { (value * 100_000).rounded() / 100_000 }
}
