import ChatTemplate
import Foundation
import TensorIO
import Tokenizer

/// Fine-tuning conversations from a JSONL file, rendered with the model's chat template into one
/// stream of token ids with a loss mask: what ``TokenDataset`` trains on when only the
/// assistant's answers are learned.
///
/// Each line is `{"messages": [{"role", "content"}, …]}` (mlx-lm's and OpenAI's fine-tuning
/// format) or `{"prompt": …, "completion": …}` (a user turn and the assistant's answer). Every
/// assistant turn is masked in: the tokens between the conversation rendered up to it with the
/// generation prompt and rendered through it (its end-of-turn tokens included, so the model
/// learns to stop). With `trainOnPrompt`, every token counts. Conversations follow one another
/// in the stream (packed); each is rendered whole, from its own first token. A template that
/// renders earlier turns differently once later ones follow (Qwen 3 drops an answered turn's
/// empty reasoning) cannot be cut that way: each assistant turn is then its own example, the
/// conversation rendered through it.
public struct ChatData {
    /// The ids of every conversation, one after another.
    public private(set) var ids: [Int32] = []
    /// 1 where the token is learned (predicted as a target), 0 elsewhere; as long as `ids`.
    public private(set) var mask: [Int32] = []
    public private(set) var conversations = 0

    /// Reads `path`, naming the line of anything that is not a conversation the template can render.
    public init(path: String, template: ChatTemplate, tokenizer: any TextTokenizer, bosText: String, eosText: String,
                trainOnPrompt: Bool) throws {
        let data: Data
        do { data = try InputFile.read(path) } catch let error as TensorFileError { throw ModelError(error.description) }
        guard let text = String(data: data, encoding: .utf8) else { throw ModelError("\(path): not UTF-8 text") }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { continue }
            let where_ = "\(path): line \(index + 1)"
            let messages = try Self.messages(trimmed, at: where_)
            let segments = try Self.examples(messages, template: template, bosText: bosText, eosText: eosText, at: where_).joined()
            for (segment, learned) in segments {
                let segmentIDs = tokenizer.encodeChat(segment, bos: bosText, eos: eosText)
                ids += segmentIDs
                mask += Array(repeating: learned || trainOnPrompt ? 1 : 0, count: segmentIDs.count)
            }
            conversations += 1
        }
        guard conversations > 0 else { throw ModelError("\(path): no conversations (one JSON object per line)") }
        guard mask.contains(1) else { throw ModelError("\(path): no assistant turn to learn from") }
    }

    /// The messages of one line.
    static func messages(_ line: String, at place: String) throws -> [ChatMessage] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ModelError("\(place): not a JSON object")
        }
        if let prompt = object["prompt"], let completion = object["completion"] {
            guard let prompt = prompt as? String, let completion = completion as? String else {
                throw ModelError("\(place): 'prompt' and 'completion' must be strings")
            }
            return [ChatMessage(role: "user", content: prompt), ChatMessage(role: "assistant", content: completion)]
        }
        guard let list = object["messages"] else {
            throw ModelError("\(place): neither a conversation ({\"messages\": [...]}) nor a {\"prompt\", \"completion\"} pair")
        }
        guard let messages = list as? [[String: Any]], !messages.isEmpty else { throw ModelError("\(place): 'messages' must be a non-empty list of objects") }
        return try messages.enumerated().map { number, message in
            guard let role = message["role"] as? String, ["system", "user", "assistant"].contains(role) else {
                throw ModelError("\(place): message \(number + 1) has role \(message["role"].map { "'\($0)'" } ?? "missing"); use system, user or assistant")
            }
            guard let content = message["content"] as? String else { throw ModelError("\(place): message \(number + 1) has no string 'content'") }
            return ChatMessage(role: role, content: content)
        }
    }

    /// The rendered conversation cut into stretches, each marked learned (an assistant turn) or
    /// not: one example (the whole conversation), or one per assistant turn when the template
    /// renders the turns before it differently once later ones follow.
    static func examples(_ messages: [ChatMessage], template: ChatTemplate, bosText: String, eosText: String,
                         at place: String) throws -> [[(text: String, learned: Bool)]] {
        let answers = messages.indices.filter { messages[$0].role == "assistant" }
        guard !answers.isEmpty else { throw ModelError("\(place): no assistant message to learn") }
        func render(_ prefix: ArraySlice<ChatMessage>, generationPrompt: Bool) throws -> String {
            do { return try template.render(Array(prefix), addGenerationPrompt: generationPrompt, bosToken: bosText, eosToken: eosText) } catch {
                throw ModelError("\(place): the chat template cannot render this conversation: \(error)")
            }
        }
        // Each answer: the text up to it (with the generation prompt) and through it.
        let spans = try answers.map { index in
            (index: index, before: try render(messages[..<index], generationPrompt: true), through: try render(messages[...index], generationPrompt: false))
        }
        for span in spans where !(span.through.hasPrefix(span.before)) {
            throw ModelError("\(place): the chat template does not render assistant message \(span.index + 1) after the prompt it renders for it; its tokens cannot be told apart")
        }
        /// `text` cut at the answers' spans (counted in characters from its start).
        func cut(_ text: String, _ spans: ArraySlice<(index: Int, before: String, through: String)>) -> [(text: String, learned: Bool)] {
            var pieces: [(String, Bool)] = [], done = 0
            for span in spans {
                let (start, end) = (max(span.before.count, done), span.through.count)
                if start > done { pieces.append((String(text.dropFirst(done).prefix(start - done)), false)) }
                if end > start { pieces.append((String(text.dropFirst(start).prefix(end - start)), true)) }
                done = max(done, end)
            }
            if done < text.count { pieces.append((String(text.dropFirst(done)), false)) }
            return pieces
        }
        let whole = try render(messages[...], generationPrompt: false)
        if spans.allSatisfy({ whole.hasPrefix($0.through) }) { return [cut(whole, spans[...])] }
        return spans.indices.map { cut(spans[$0].through, spans[$0...$0]) }
    }

    /// Writes the ids and the mask as two NPY files (int32), each atomically.
    public func write(ids idsPath: String, mask maskPath: String) throws {
        try Checkpoint.mapFileErrors {
            try NPYWriter.write(ids, shape: [ids.count], to: idsPath)
            try NPYWriter.write(mask, shape: [mask.count], to: maskPath)
        }
    }
}
