import ChatTemplate
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Kernels
import Model
import TestSupport
import Tokenizer
import XCTest

/// `lm-serve` run as a user runs it, on a small model the test makes (no download), answered over
/// HTTP: the OpenAI shapes, streaming, batching that does not change answers, every kind of bad
/// request, a client that goes away, and SIGTERM.
final class ServerTests: TemporaryDirectoryTestCase {
    /// A random model with a trained BPE tokenizer and a chat template, saved as a model directory.
    /// `template`: the chat template's source (default: roles in angle brackets).
    func makeModelDirectory(template source: String = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
                            name: String = "tiny", context: Int = 96) throws -> String {
        let text = String(repeating: "Once upon a time there was a model. Hello, world! 123 ", count: 40)
        let tokenizer = try Array(text.utf8).withUnsafeBufferPointer {
            try BPETrainer.train(bytes: $0, options: BPETrainingOptions(vocabSize: 300, specialTokens: ["<|endoftext|>"]))
        }
        let config = ModelConfig(vocabSize: tokenizer.vocabularySize, contextLength: context, dModel: 64, numLayers: 2,
                                 numHeads: 4, dFF: 96, ropeTheta: 10_000, numKVHeads: 2)
        let template = try ChatTemplate(source)
        let pretrained = PretrainedModel(model: try TransformerLM(config: config, seed: 5), tokenizer: tokenizer, chatTemplate: template,
                                         bosText: "<|endoftext|>", eosText: "<|endoftext|>", path: "random")
        let path = directory + "/" + name
        try pretrained.save(to: path, storage: .quantized(.q8_0))
        return path
    }

    /// A running server and where it listens.
    final class Server {
        let process: Process
        let port: Int
        let errors: Pipe
        init(process: Process, port: Int, errors: Pipe) { (self.process, self.port, self.errors) = (process, port, errors) }
        var base: String { "http://127.0.0.1:\(port)" }
    }

    func start(_ model: String, _ extra: [String] = []) throws -> Server {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try builtExecutable("lm-serve"))
        process.arguments = ["--model", model, "--port", "0", "--threads", "2"] + extra
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // The listening line says which port was taken.
        var seen = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let data = errors.fileHandleForReading.availableData
            if data.isEmpty { break }
            seen += String(decoding: data, as: UTF8.self)
            if let range = seen.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let port = Int(seen[range].split(separator: ":").last!)!
                return Server(process: process, port: port, errors: errors)
            }
        }
        process.terminate()
        XCTFail("lm-serve did not start: \(seen)")
        throw XCTSkip("no server")
    }

    /// One request: status and body.
    func call(_ server: Server, _ method: String = "POST", _ path: String, body: Data? = nil,
              headers: [String: String] = [:]) throws -> (status: Int, body: Data) {
        var request = URLRequest(url: URL(string: server.base + path)!)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = 120
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, Data)?
        nonisolated(unsafe) var failure: Error?
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error { failure = error } else { result = ((response as! HTTPURLResponse).statusCode, data ?? Data()) }
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        return result!
    }

    func post(_ server: Server, _ path: String, _ object: [String: Any], headers: [String: String] = [:]) throws -> (status: Int, json: [String: Any]) {
        let (status, body) = try call(server, "POST", path, body: try JSONSerialization.data(withJSONObject: object), headers: headers)
        return (status, (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? ["raw": String(decoding: body, as: UTF8.self)])
    }

    /// Batch invariance: `requests` made one by one, then all at once (joining running batches),
    /// get the same answers.
    func assertAnswersTogetherEqualAlone(_ server: Server, _ path: String, _ requests: [[String: Any]], headers: [String: String] = [:],
                                         file: StaticString = #filePath, line: UInt = #line) throws {
        let alone = try requests.map { try XCTUnwrap(content(try post(server, path, $0, headers: headers).json)) }
        let together = UnsafeMutableBufferPointer<String>.allocate(capacity: requests.count)
        together.initialize(repeating: "")
        defer { together.deallocate() }
        nonisolated(unsafe) let shared = (test: self, server: server, requests: requests, answers: together)
        DispatchQueue.concurrentPerform(iterations: requests.count) { index in
            let (test, server, requests, answers) = shared
            answers[index] = (try? test.post(server, path, requests[index], headers: headers)).flatMap { test.content($0.json) } ?? "(failed)"
        }
        XCTAssertEqual(Array(together), alone, "answers in a batch = answers alone (\(path))", file: file, line: line)
    }

    func content(_ json: [String: Any]) -> String? {
        let choice = (json["choices"] as? [[String: Any]])?.first
        return (choice?["message"] as? [String: Any])?["content"] as? String ?? choice?["text"] as? String
    }

    /// A `usage` object's counts, `prompt_tokens_details.cached_tokens` as `cached_tokens`.
    func counts(_ usage: Any?) -> [String: Int]? {
        guard let usage = usage as? [String: Any] else { return nil }
        var result = usage.compactMapValues { $0 as? Int }
        if let cached = (usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int { result["cached_tokens"] = cached }
        return result
    }

    func finishReason(_ json: [String: Any]) -> String? { (json["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }

    /// The streamed events' JSON objects, and whether the stream ended with `[DONE]`.
    func events(_ body: Data) -> (objects: [[String: Any]], done: Bool) {
        var objects: [[String: Any]] = [], done = false
        for line in String(decoding: body, as: UTF8.self).components(separatedBy: "\n\n") where line.hasPrefix("data: ") {
            let payload = line.dropFirst(6)
            if payload == "[DONE]" { done = true; continue }
            if let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] { objects.append(object) }
        }
        return (objects, done)
    }

    func stop(_ server: Server) -> Int32 {
        server.process.terminate()  // SIGTERM
        server.process.waitUntilExit()
        return server.process.terminationStatus
    }

    func testCompletionsStreamingBatchingAndShutdown() throws {
        let model = try makeModelDirectory()
        let server = try start(model, ["--parallel", "3", "--queue", "16", "--api-key", "sesame"])
        let key = ["Authorization": "Bearer sesame"]
        defer { if server.process.isRunning { server.process.terminate() } }

        let (healthStatus, health) = try call(server, "GET", "/health")
        XCTAssertEqual(healthStatus, 200)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: health) as? [String: Any])?["slots"] as? Int, 3)
        let models = try call(server, "GET", "/v1/models", headers: key)
        XCTAssertTrue(String(decoding: models.body, as: UTF8.self).contains("\"tiny\""), "the directory's name is the model id")

        // A plain chat completion, and the same request streamed: the same text, OpenAI's shapes.
        let chat: [String: Any] = ["model": "tiny", "messages": [["role": "user", "content": "Hello, world!"]], "temperature": 0, "max_tokens": 12]
        let (status, whole) = try post(server, "/v1/chat/completions", chat, headers: key)
        XCTAssertEqual(status, 200, "\(whole)")
        XCTAssertEqual(whole["object"] as? String, "chat.completion")
        let text = try XCTUnwrap(content(whole))
        let usage = try XCTUnwrap(counts(whole["usage"]))
        XCTAssertEqual(usage["total_tokens"], usage["prompt_tokens"]! + usage["completion_tokens"]!)
        XCTAssertEqual(finishReason(whole) == "length", usage["completion_tokens"] == 12, "\(whole)")
        var streamed = chat
        streamed["stream"] = true
        streamed["stream_options"] = ["include_usage": true]
        let raw = try call(server, "POST", "/v1/chat/completions", body: try JSONSerialization.data(withJSONObject: streamed), headers: key)
        let (chunks, done) = events(raw.body)
        XCTAssertTrue(done, "the stream ends with [DONE]")
        XCTAssertEqual(chunks.first.flatMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: String] }, ["role": "assistant", "content": ""])
        let pieces = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }
        XCTAssertEqual(pieces.joined(), text, "streamed = whole")
        let streamedUsage = counts(chunks.last?["usage"]) ?? [:]
        XCTAssertEqual(streamedUsage["completion_tokens"], usage["completion_tokens"])
        // The prompt cache: the same prompt again reuses all of it but its last token.
        XCTAssertEqual(streamedUsage["cached_tokens"], usage["prompt_tokens"]! - 1, "\(streamedUsage)")

        // Eight requests at once on three slots (some wait, then join running batches): each
        // answer equals the same request made alone, sampled ones included (their seed).
        let requests: [[String: Any]] = (0..<8).map { index in
            ["prompt": "Once upon a time \(index)", "max_tokens": 6 + 3 * index, "temperature": index % 2 == 0 ? 0 : 0.9,
             "top_p": 0.95, "seed": index]
        }
        try assertAnswersTogetherEqualAlone(server, "/v1/completions", requests, headers: key)

        // Stop strings: the answer ends before the stop string, which never shows.
        let long = try XCTUnwrap(content(try post(server, "/v1/completions", ["prompt": "Hello", "max_tokens": 30, "temperature": 0], headers: key).json))
        if long.count > 6 {
            let stop = String(long.dropFirst(long.count / 2).prefix(2))
            let cut = try post(server, "/v1/completions", ["prompt": "Hello", "max_tokens": 30, "temperature": 0, "stop": stop], headers: key).json
            XCTAssertEqual(content(cut), String(long[..<long.range(of: stop)!.lowerBound]), "cut before '\(stop)'")
            XCTAssertEqual(finishReason(cut), "stop")
        }

        // Bad requests: each a clear error in OpenAI's shape, and the server still serves.
        func expectError(_ body: Data, _ status: Int, _ needle: String, path: String = "/v1/completions", headers: [String: String]? = nil) throws {
            let (code, reply) = try call(server, "POST", path, body: body, headers: headers ?? key)
            let error = (try? JSONSerialization.jsonObject(with: reply) as? [String: Any])?["error"] as? [String: Any]
            XCTAssertEqual(code, status, "\(needle): \(String(decoding: reply, as: UTF8.self))")
            XCTAssertTrue((error?["message"] as? String ?? "").contains(needle), "\(needle) in \(String(decoding: reply, as: UTF8.self))")
        }
        func json(_ object: [String: Any]) throws -> Data { try JSONSerialization.data(withJSONObject: object) }
        try expectError(Data("{\"prompt\": ".utf8), 400, "not valid JSON")
        try expectError(Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]), 400, "UTF-8")
        try expectError(try json(["prompt": "x", "max_tokens": -3]), 400, "max_tokens")
        try expectError(try json(["prompt": "x", "max_tokens": "ten"]), 400, "max_tokens")
        try expectError(try json(["prompt": "x", "max_tokens": 1_000_000]), 400, "exceed the context")
        try expectError(try json(["prompt": "x", "n": 2]), 400, "'n'")
        try expectError(try json(["prompt": "x", "frobnicate": true]), 400, "frobnicate")
        try expectError(try json(["prompt": String(repeating: "Once upon a time ", count: 200)]), 400, "the context holds")
        try expectError(try json(["prompt": "x", "model": "gpt-9"]), 404, "gpt-9")
        try expectError(try json(["messages": [["role": "wizard", "content": "x"]]]), 400, "messages[0]", path: "/v1/chat/completions")
        try expectError(Data(repeating: 0x20, count: (1 << 20) + 10), 413, "limit")
        try expectError(try json(["prompt": "x"]), 401, "API key", headers: [:])
        try expectError(try json(["prompt": "x"]), 401, "not valid", headers: ["Authorization": "Bearer open"])
        XCTAssertEqual(try call(server, "GET", "/v1/nope", headers: key).status, 404)
        XCTAssertEqual(try post(server, "/v1/completions", ["prompt": "Hello", "max_tokens": 2], headers: key).status, 200, "still serving")

        // A client that goes away mid-stream frees its slot at once.
        let socket = try RawClient(port: server.port)
        try socket.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sesame\r\nContent-Type: application/json\r\nContent-Length: LEN\r\n\r\n",
                        body: #"{"prompt":"Once","max_tokens":80,"stream":true,"temperature":0.5}"#)
        XCTAssertTrue(try socket.read().contains("data: "), "the stream started")
        socket.close()
        var active = -1
        for _ in 0..<100 {
            let health = try JSONSerialization.jsonObject(with: try call(server, "GET", "/health").body) as? [String: Any]
            active = health?["active"] as? Int ?? -1
            if active == 0 { break }
            usleep(50_000)
        }
        XCTAssertEqual(active, 0, "the slot is free again")

        // The inspection endpoint: tokens, logits of the vocabulary, one layer's attention rows.
        let (inspectStatus, inspected) = try post(server, "/v1/inspect", ["prompt": "Hello, world!", "layer": 1], headers: key)
        XCTAssertEqual(inspectStatus, 200, "\(inspected)")
        let tokens = try XCTUnwrap(inspected["tokens"] as? [[String: Any]])
        let attention = try XCTUnwrap(inspected["attention"] as? [[[Double]]])
        XCTAssertEqual(attention.count, 4)
        XCTAssertEqual(attention[0].count, tokens.count)
        for row in attention[3] { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-3) }  // rounded to 4 decimals
        let logits = try XCTUnwrap(Data(base64Encoded: inspected["logits"] as? String ?? ""))
        XCTAssertEqual(logits.count, 4 * (inspected["vocab_size"] as? Int ?? 0))
        XCTAssertEqual((inspected["top"] as? [Any])?.count, 100)
        XCTAssertEqual(try call(server, "GET", "/").status, 200, "the page")

        // /metrics in Prometheus' text format: every sample line is `name{labels} number`.
        let (metricsStatus, metricsBody) = try call(server, "GET", "/metrics")
        XCTAssertEqual(metricsStatus, 200)
        let exposition = String(decoding: metricsBody, as: UTF8.self)
        var samples: [String: Double] = [:]
        for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            XCTAssertEqual(parts.count, 2, "\(line)")
            XCTAssertNotNil(Double(parts.last ?? ""), "\(line)")
            samples[String(parts[0])] = Double(parts.last ?? "")
        }
        XCTAssertGreaterThan(samples[#"lm_requests_total{route="/v1/completions",status="200"}"#] ?? 0, 10, exposition)
        XCTAssertGreaterThan(samples[#"lm_requests_total{route="/v1/completions",status="400"}"#] ?? 0, 5, exposition)
        XCTAssertEqual(samples[#"lm_requests_total{route="/v1/completions",status="401"}"#], 2, exposition)
        XCTAssertGreaterThan(samples["lm_generated_tokens_total"] ?? 0, 50)
        XCTAssertGreaterThan(samples["lm_cached_prompt_tokens_total"] ?? 0, 0, "the prompt cache was used")
        XCTAssertEqual(samples["lm_time_to_first_token_seconds_count"], samples[#"lm_time_to_first_token_seconds_bucket{le="+Inf"}"#])
        XCTAssertEqual(samples["lm_slots"], 3)

        XCTAssertEqual(stop(server), 0, "SIGTERM: exit 0")
    }

    /// What applications send: log-probabilities equal to the model's own log-softmax (computed
    /// here in-process from the same files), in the chat and the legacy shapes, streamed too;
    /// top-k 1 is greedy; a logit bias that bans the greedy token changes the answer; penalties
    /// are taken; out-of-range values are 400s naming the field.
    func testSamplingOptionsAndLogprobs() throws {
        let path = try makeModelDirectory()
        let server = try start(path)
        defer { if server.process.isRunning { server.process.terminate() } }

        // The reference: the first answer token's log-softmax over the vocabulary.
        let pretrained = try PretrainedModel.load(path)
        let ids = try XCTUnwrap(pretrained.tokenizer).encodePrompt("Once upon")
        let logits = try InferenceSession(model: pretrained.model).append(ids)
        let maximum = Double(logits.max()!)
        let logTotal = log(logits.reduce(0.0) { $0 + exp(Double($1) - maximum) }) + maximum
        let greedy = logits.indices.max { logits[$0] < logits[$1] }!
        let ranked = logits.indices.sorted { logits[$0] > logits[$1] }

        let request: [String: Any] = ["prompt": "Once upon", "max_tokens": 4, "temperature": 0, "logprobs": 3]
        let (status, legacy) = try post(server, "/v1/completions", request)
        XCTAssertEqual(status, 200, "\(legacy)")
        let lists = try XCTUnwrap((legacy["choices"] as? [[String: Any]])?.first?["logprobs"] as? [String: Any])
        let values = try XCTUnwrap(lists["token_logprobs"] as? [Double])
        XCTAssertEqual(values.count, 4)
        XCTAssertEqual(values[0], Double(logits[greedy]) - logTotal, accuracy: 1e-3, "the model's log-softmax")
        let tops = try XCTUnwrap(lists["top_logprobs"] as? [[String: Double]])
        XCTAssertEqual(tops[0].values.sorted(by: >).first ?? 0, Double(logits[ranked[0]]) - logTotal, accuracy: 1e-3)
        if let text = content(legacy), text.utf8.allSatisfy({ $0 < 0x80 }) {  // pieces of a character show as U+FFFD alone
            XCTAssertEqual((lists["tokens"] as? [String])?.joined(), text, "the tokens spell the text")
        }

        // Chat: logprobs + top_logprobs, whole and streamed give the same entries.
        let chat: [String: Any] = ["messages": [["role": "user", "content": "Hello"]], "max_tokens": 5, "temperature": 0,
                                   "logprobs": true, "top_logprobs": 2]
        let (chatStatus, whole) = try post(server, "/v1/chat/completions", chat)
        XCTAssertEqual(chatStatus, 200, "\(whole)")
        let entries = try XCTUnwrap(((whole["choices"] as? [[String: Any]])?.first?["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
        XCTAssertEqual(entries.count, counts(whole["usage"])?["completion_tokens"])
        for entry in entries {
            let top = try XCTUnwrap(entry["top_logprobs"] as? [[String: Any]])
            XCTAssertEqual(top.count, 2)
            XCTAssertEqual(entry["logprob"] as? Double, top[0]["logprob"] as? Double, "greedy: the chosen token is the most likely")
            XCTAssertNotNil(entry["bytes"] as? [Int])
        }
        var streamed = chat
        streamed["stream"] = true
        let raw = try call(server, "POST", "/v1/chat/completions", body: try JSONSerialization.data(withJSONObject: streamed))
        let streamedEntries = events(raw.body).objects.flatMap { chunk in
            (((chunk["choices"] as? [[String: Any]])?.first?["logprobs"] as? [String: Any])?["content"] as? [[String: Any]]) ?? []
        }
        XCTAssertEqual(streamedEntries.map { $0["logprob"] as? Double }, entries.map { $0["logprob"] as? Double })

        // Top-k 1 samples greedily at any temperature; banning the greedy token changes the first one.
        let greedyText = try XCTUnwrap(content(try post(server, "/v1/completions", ["prompt": "Once upon", "max_tokens": 6, "temperature": 0]).json))
        let topK = try post(server, "/v1/completions", ["prompt": "Once upon", "max_tokens": 6, "temperature": 1.5, "top_k": 1, "seed": 4]).json
        XCTAssertEqual(content(topK), greedyText)
        let banned = try post(server, "/v1/completions", ["prompt": "Once upon", "max_tokens": 1, "temperature": 0, "logprobs": 0,
                                                          "logit_bias": ["\(greedy)": -100]]).json
        let bannedValues = ((banned["choices"] as? [[String: Any]])?.first?["logprobs"] as? [String: Any])?["token_logprobs"] as? [Double]
        XCTAssertEqual(bannedValues?.first ?? 0, Double(logits[ranked[1]]) - logTotal, accuracy: 1e-3, "the second most likely token, its logprob unbiased")
        for extra in [["presence_penalty": 1.5, "frequency_penalty": 0.5], ["repeat_penalty": 1.3], ["repetition_penalty": 1.1, "min_p": 0.05]] {
            let body = ["prompt": "Once upon", "max_tokens": 8, "temperature": 0.7, "seed": 1].merging(extra) { $1 }
            XCTAssertEqual(try post(server, "/v1/completions", body).status, 200, "\(extra)")
        }

        // Out of range: a 400 naming the field.
        for (body, field) in [(["top_k": -2], "top_k"), (["min_p": 2], "min_p"), (["presence_penalty": 3], "presence_penalty"),
                              (["logprobs": 6], "logprobs"), (["logit_bias": ["x": 1]], "logit_bias"),
                              (["logit_bias": ["999999": 1]], "logit_bias"), (["repeat_penalty": 0], "repeat_penalty")] as [([String: Any], String)] {
            let (code, reply) = try post(server, "/v1/completions", ["prompt": "x"].merging(body) { $1 })
            XCTAssertEqual(code, 400, "\(body): \(reply)")
            XCTAssertEqual((reply["error"] as? [String: Any])?["param"] as? String, field, "\(reply)")
        }
        let (code, reply) = try post(server, "/v1/chat/completions", ["messages": [["role": "user", "content": "x"]], "top_logprobs": 21, "logprobs": true])
        XCTAssertEqual(code, 400, "\(reply)")

        // Structured output: a random model's answer, constrained, parses and matches the schema.
        // (A random model loves whitespace, which JSON allows anywhere: banned by a bias, so the
        // answer ends within the tiny context.)
        let tokenizer = try XCTUnwrap(pretrained.tokenizer)
        var spaces: [String: Any] = [:]
        for id in 0..<Int32(tokenizer.vocabularySize) {
            // Escapes too: a random model spells keys with them (`"na\u006De"`), valid but long.
            if let bytes = try? tokenizer.pieceBytes(id, after: id), !bytes.isEmpty,
               bytes.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) || bytes.contains(UInt8(ascii: "\\")) {
                spaces["\(id)"] = -100
            }
        }
        let schema: [String: Any] = ["type": "object", "properties": ["name": ["type": "string", "maxLength": 8], "n": ["type": "integer"],
                                     "ok": ["type": "boolean"]], "required": ["name", "n", "ok"], "additionalProperties": false]
        for seed in 0..<3 {
            let structured = try post(server, "/v1/chat/completions", [
                "messages": [["role": "user", "content": "Hello"]], "max_tokens": 60, "temperature": 0.8, "seed": seed, "logit_bias": spaces,
                "response_format": ["type": "json_schema", "json_schema": ["name": "thing", "schema": schema, "strict": true]]]).json
            let answer = try XCTUnwrap(content(structured), "\(structured)")
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any], answer)
            XCTAssertEqual(Set(object.keys), ["name", "n", "ok"], answer)
            XCTAssertLessThanOrEqual((object["name"] as? String)?.count ?? 99, 8, answer)
            XCTAssertEqual(finishReason(structured), "stop", "a whole document ends the answer")
        }
        // Constrained decoding is batch-invariant: eight schema-constrained streams at once (each
        // with its own seed) answer what each answers alone.
        let requests: [[String: Any]] = (0..<8).map { seed in
            ["messages": [["role": "user", "content": "Hello \(seed)"]], "max_tokens": 60, "temperature": 0.8, "seed": seed, "logit_bias": spaces,
             "response_format": ["type": "json_schema", "json_schema": ["name": "thing", "schema": schema, "strict": true]]]
        }
        try assertAnswersTogetherEqualAlone(server, "/v1/chat/completions", requests)
        let anyObject = try post(server, "/v1/completions", ["prompt": "Hello", "max_tokens": 40, "temperature": 0, "logit_bias": spaces,
                                                             "response_format": ["type": "json_object"]]).json
        if finishReason(anyObject) == "stop", let answer = content(anyObject) {
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any], answer)
        }
        for (format, needle) in [(["type": "json_schema", "json_schema": ["name": "x", "schema": ["type": "string", "pattern": "a"]]], "'pattern'"),
                                 (["type": "json_schema", "json_schema": ["schema": ["type": "string"]]], "name"),
                                 (["type": "yaml"], "yaml")] as [([String: Any], String)] {
            let (code, reply) = try post(server, "/v1/completions", ["prompt": "x", "response_format": format])
            XCTAssertEqual(code, 400, "\(reply)")
            XCTAssertTrue(((reply["error"] as? [String: Any])?["message"] as? String ?? "").contains(needle), "\(reply)")
        }
        XCTAssertEqual(stop(server), 0)
    }

    /// Tool calling on a template without tool support (the generic tool prompt): a forced call
    /// (`required` or a named function) is constrained to the function's schema, so its arguments
    /// always validate, whole and streamed; the call and its result go back in the next turn;
    /// bad tools and choices are 400s.
    func testToolCalls() throws {
        let path = try makeModelDirectory(name: "tools", context: 1024)  // the generic tool prompt is long in a 300-piece vocabulary
        let server = try start(path)
        defer { if server.process.isRunning { server.process.terminate() } }
        let pretrained = try PretrainedModel.load(path)
        let tokenizer = try XCTUnwrap(pretrained.tokenizer)
        var spaces: [String: Any] = [:]  // a random model's whitespace, banned so the answer fits the tiny context
        for id in 0..<Int32(tokenizer.vocabularySize) {
            if let bytes = try? tokenizer.pieceBytes(id, after: id), !bytes.isEmpty, bytes.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
                spaces["\(id)"] = -100
            }
        }
        let weather: [String: Any] = ["type": "function", "function": ["name": "get_weather", "description": "The weather in a city.",
            "parameters": ["type": "object", "properties": ["city": ["type": "string", "maxLength": 6], "days": ["type": "integer"]],
                           "required": ["city", "days"], "additionalProperties": false]]]
        let add: [String: Any] = ["type": "function", "function": ["name": "add", "parameters": ["type": "object", "properties": ["a": ["type": "integer"]],
                                                                                                 "required": ["a"], "additionalProperties": false]]]
        let messages: [[String: Any]] = [["role": "user", "content": "Weather?"]]
        for (choice, expected) in [("required", nil), ("named", "get_weather")] as [(String, String?)] {
            let toolChoice: Any = expected.map { ["type": "function", "function": ["name": $0]] } ?? choice
            let body: [String: Any] = ["messages": messages, "tools": [weather, add], "tool_choice": toolChoice, "max_tokens": 250,
                                       "temperature": 0.7, "seed": 3, "logit_bias": spaces]
            let (status, reply) = try post(server, "/v1/chat/completions", body)
            XCTAssertEqual(status, 200, "\(reply)")
            XCTAssertEqual(finishReason(reply), "tool_calls", "\(reply)")
            let message = try XCTUnwrap((reply["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])
            let toolCall = try XCTUnwrap((message["tool_calls"] as? [[String: Any]])?.first, "\(message)")
            let function = try XCTUnwrap(toolCall["function"] as? [String: Any])
            let name = try XCTUnwrap(function["name"] as? String)
            if let expected { XCTAssertEqual(name, expected) }
            let arguments = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data((function["arguments"] as? String ?? "").utf8)) as? [String: Any])
            if name == "get_weather" {
                XCTAssertEqual(Set(arguments.keys), ["city", "days"], "\(arguments)")
                XCTAssertLessThanOrEqual((arguments["city"] as? String)?.count ?? 99, 6)
                XCTAssertNotNil(arguments["days"] as? Int)
            } else {
                XCTAssertEqual(Set(arguments.keys), ["a"], "\(arguments)")
            }
            XCTAssertTrue((toolCall["id"] as? String ?? "").hasPrefix("call_"))
            // Streamed: the same call in tool_calls deltas (id and name first, then the arguments
            // as they are written), finish_reason tool_calls.
            var streamed = body
            streamed["stream"] = true
            let raw = try call(server, "POST", "/v1/chat/completions", body: try JSONSerialization.data(withJSONObject: streamed))
            let chunks = events(raw.body).objects.compactMap { ($0["choices"] as? [[String: Any]])?.first }
            let deltas = chunks.compactMap { (($0["delta"] as? [String: Any])?["tool_calls"] as? [[String: Any]])?.first }
            XCTAssertEqual(Set(deltas.map { $0["index"] as? Int }), [0])
            XCTAssertEqual((deltas.first?["function"] as? [String: Any])?["name"] as? String, name)
            XCTAssertTrue((deltas.first?["id"] as? String ?? "").hasPrefix("call_"))
            XCTAssertTrue(deltas.dropFirst().allSatisfy { $0["id"] == nil }, "the id only in the call's first delta")
            // (In pieces when the model names the function first: ToolCallStreamTests.)
            XCTAssertGreaterThanOrEqual(deltas.count, 2, "the call, then its arguments")
            XCTAssertEqual(deltas.map { ($0["function"] as? [String: Any])?["arguments"] as? String ?? "" }.joined(), function["arguments"] as? String)
            XCTAssertEqual(chunks.last?["finish_reason"] as? String, "tool_calls")

            // The round trip: the call and its result rendered back, and an answer.
            let next: [[String: Any]] = messages + [["role": "assistant", "content": NSNull(), "tool_calls": [toolCall]],
                                                    ["role": "tool", "tool_call_id": toolCall["id"] ?? "", "content": "{\"sky\": \"clear\"}"]]
            let (nextStatus, answer) = try post(server, "/v1/chat/completions", ["messages": next, "tools": [weather, add], "max_tokens": 5, "temperature": 0])
            XCTAssertEqual(nextStatus, 200, "\(answer)")
        }
        for (body, field) in [(["tools": [["type": "function", "function": ["description": "no name"]]]], "tools"),
                              (["tools": [weather], "tool_choice": ["type": "function", "function": ["name": "missing"]]], "tool_choice"),
                              (["tools": [weather], "tool_choice": "sometimes"], "tool_choice"),
                              (["tool_choice": "required"], "tool_choice"),
                              (["messages": [["role": "tool", "content": "x"]]], "messages[0]")] as [([String: Any], String)] {
            let (code, reply) = try post(server, "/v1/chat/completions", ["messages": messages, "max_tokens": 2].merging(body) { $1 })
            XCTAssertEqual(code, 400, "\(body): \(reply)")
            XCTAssertEqual((reply["error"] as? [String: Any])?["param"] as? String, field, "\(reply)")
        }
        XCTAssertEqual(stop(server), 0)
    }

    /// A reasoning model's template: `<think>` in the generation prompt sends the answer to
    /// `reasoning_content` (whole and streamed); `chat_template_kwargs` reaches the template
    /// (`enable_thinking: false` renders another prompt, and the answer is content).
    func testReasoningContentAndTemplateVariables() throws {
        let template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>"
            + "{% if enable_thinking is defined and not enable_thinking %}<no>{% else %}<think>{% endif %}{% endif %}"
        let server = try start(try makeModelDirectory(template: template, name: "thinker"))
        defer { if server.process.isRunning { server.process.terminate() } }
        let chat: [String: Any] = ["messages": [["role": "user", "content": "Hello"]], "max_tokens": 8, "temperature": 0]
        let (status, thinking) = try post(server, "/v1/chat/completions", chat)
        XCTAssertEqual(status, 200, "\(thinking)")
        let message = try XCTUnwrap((thinking["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])
        let reasoning = message["reasoning_content"] as? String ?? ""
        XCTAssertFalse(reasoning.isEmpty, "\(message)")
        XCTAssertEqual(message["content"] as? String, "", "the answer is all reasoning: \(message)")
        var streamed = chat
        streamed["stream"] = true
        let raw = try call(server, "POST", "/v1/chat/completions", body: try JSONSerialization.data(withJSONObject: streamed))
        let deltas = events(raw.body).objects.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
        XCTAssertEqual(deltas.compactMap { $0["reasoning_content"] as? String }.joined(), reasoning, "streamed = whole")

        var plain = chat
        plain["chat_template_kwargs"] = ["enable_thinking": false]
        let (plainStatus, answer) = try post(server, "/v1/chat/completions", plain)
        XCTAssertEqual(plainStatus, 200, "\(answer)")
        let plainMessage = try XCTUnwrap((answer["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])
        XCTAssertNil(plainMessage["reasoning_content"], "\(plainMessage)")
        XCTAssertNotEqual(counts(answer["usage"])?["prompt_tokens"], counts(thinking["usage"])?["prompt_tokens"], "the variable changed the prompt")
        let (badStatus, _) = try post(server, "/v1/chat/completions", chat.merging(["chat_template_kwargs": "x"]) { $1 })
        XCTAssertEqual(badStatus, 400)
        XCTAssertEqual(stop(server), 0)
    }

    /// SIGTERM while a long answer streams: the stream ends and the server exits 0.
    /// The views inside the model over HTTP: the logit lens, the attribution (parts adding up to
    /// the logit) and patching (the whole stream after the last block is the clean run), with bad
    /// parameters refused naming the field.
    func testInsideTheModelViews() throws {
        let path = try makeModelDirectory()
        let server = try start(path)
        defer { if server.process.isRunning { server.process.terminate() } }
        let (lensStatus, lens) = try post(server, "/v1/inspect/lens", ["prompt": "Once upon a time there was", "top": 2])
        XCTAssertEqual(lensStatus, 200, "\(lens)")
        let layers = try XCTUnwrap(lens["layers"] as? [Int]), positions = try XCTUnwrap(lens["positions"] as? [Int])
        let cells = try XCTUnwrap(lens["cells"] as? [[[String: Any]]])
        XCTAssertEqual(layers, [0, 1, 2])
        XCTAssertEqual(cells.count, 3)
        XCTAssertTrue(cells.allSatisfy { $0.count == positions.count })
        XCTAssertEqual((cells[0][0]["top"] as? [[String: Any]])?.count, 2)
        XCTAssertTrue(cells[2].allSatisfy { $0["answer_rank"] as? Int == 0 }, "the last read-out is the model's prediction")

        let (partsStatus, parts) = try post(server, "/v1/inspect/attribution", ["prompt": "Once upon a time", "token": 7])
        XCTAssertEqual(partsStatus, 200, "\(parts)")
        let logit = try XCTUnwrap(parts["logit"] as? Double), total = try XCTUnwrap(parts["total"] as? Double)
        XCTAssertEqual(total, logit, accuracy: 1e-4 * max(1, abs(logit)))
        XCTAssertEqual((parts["heads"] as? [[Double]])?.map(\.count), [4, 4])
        XCTAssertEqual((parts["token"] as? [String: Any])?["id"] as? Int, 7)

        let (patchStatus, patch) = try post(server, "/v1/inspect/patch", ["prompt": "Once upon a time", "corrupted_prompt": "Once upon a model", "components": true])
        XCTAssertEqual(patchStatus, 200, "\(patch)")
        let stream = try XCTUnwrap(patch["stream"] as? [[Double]])
        XCTAssertEqual(stream.count, 3)
        if (patch["clean_p"] as? Double ?? 0) - (patch["corrupted_p"] as? Double ?? 0) > 1e-3 {
            XCTAssertEqual(stream[2].last ?? 0, 1, accuracy: 1e-3, "the last position after the last block is the clean run")
        }
        XCTAssertEqual((patch["heads"] as? [[Double]])?.count, 2)
        XCTAssertEqual((patch["feed_forward"] as? [Double])?.count, 2)

        for (route, body, field) in [("/v1/inspect/lens", ["prompt": "Once", "positions": [9]], "positions"),
                                     ("/v1/inspect/lens", ["prompt": "Once", "zoom": 2], "zoom"),
                                     ("/v1/inspect/attribution", ["prompt": "Once", "token": 100_000], "token"),
                                     ("/v1/inspect/patch", ["prompt": "Once upon a time", "corrupted_prompt": "Once"], "corrupted_prompt"),
                                     ("/v1/inspect/patch", ["prompt": "Once"], "corrupted_prompt"),
                                     ("/v1/inspect/lens", ["prompt": ""], "prompt")] as [(String, [String: Any], String)] {
            let (code, reply) = try post(server, route, body)
            XCTAssertEqual(code, 400, "\(route) \(body): \(reply)")
            XCTAssertEqual((reply["error"] as? [String: Any])?["param"] as? String, field, "\(route) \(body): \(reply)")
        }
    }

    /// A `--context` past the model's positions is refused at start, naming both numbers (the
    /// slots used to be cut to the model's quietly while the listening line said otherwise).
    func testContextAboveTheModelsIsRefused() throws {
        let path = try makeModelDirectory(context: 96)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try builtExecutable("lm-serve"))
        process.arguments = ["--model", path, "--port", "0", "--context", "200"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0)
        XCTAssertTrue(message.contains("--context 200") && message.contains("context of 96 tokens"), message)
    }

    func testSigtermDuringAStream() throws {
        let server = try start(try makeModelDirectory())
        let socket = try RawClient(port: server.port)
        try socket.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: LEN\r\n\r\n",
                        body: #"{"prompt":"Once","max_tokens":90,"stream":true}"#)
        XCTAssertTrue(try socket.read().contains("data: "))
        server.process.terminate()
        server.process.waitUntilExit()
        XCTAssertEqual(server.process.terminationStatus, 0)
        socket.close()
    }
}

/// A blocking TCP client, for a request the test abandons half-way (URLSession would not let go).
final class RawClient {
    private let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw XCTSkip("cannot connect to 127.0.0.1:\(port)") }
    }

    /// Sends `head` with LEN replaced by the body's length, then the body.
    func send(_ head: String, body: String) throws {
        let message = head.replacingOccurrences(of: "LEN", with: "\(body.utf8.count)") + body
        _ = message.withCString { Glibc.send(descriptor, $0, strlen($0), 0) }
    }

    /// What arrives within a few seconds, at least one read.
    func read() throws -> String {
        var buffer = [UInt8](repeating: 0, count: 65536), text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && !text.contains("data: ") {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { break }
            text += String(decoding: buffer[0..<count], as: UTF8.self)
        }
        return text
    }

    func close() { Glibc.close(descriptor) }
}
