import Foundation
import Model
import Tokenizer

/// Log-probabilities in OpenAI's two shapes: chat's `logprobs.content` (one object per token,
/// with its text, bytes and alternatives) and the legacy completions' parallel lists (`tokens`,
/// `token_logprobs`, `top_logprobs`, `text_offset`). A token's text is its piece after the token
/// before it (the tokenizer's rule), so a piece that is part of a character shows as U+FFFD and
/// its `bytes` say what it is.
struct LogprobShapes {
    let tokenizer: any TextTokenizer
    /// The token before the next one reported (the prompt's last, at first).
    private var previous: Int32
    /// Characters of text before the next token (legacy `text_offset`).
    private var offset: Int

    init(tokenizer: any TextTokenizer, promptLast: Int32, promptCharacters: Int) {
        (self.tokenizer, previous, offset) = (tokenizer, promptLast, promptCharacters)
    }

    private func bytes(_ token: Int32) -> [UInt8] {
        guard Int(token) < tokenizer.vocabularySize else { return [] }
        return (try? tokenizer.pieceBytes(token, after: previous)) ?? []
    }

    /// Chat's entries for `logprobs`, in order.
    mutating func chat(_ logprobs: [TokenLogprob]) -> [[String: Any]] {
        logprobs.map { entry in
            func item(_ token: Int32, _ logprob: Float) -> [String: Any] {
                let raw = bytes(token)
                return ["token": String(decoding: raw, as: UTF8.self), "logprob": Double(logprob), "bytes": raw.map(Int.init)]
            }
            var object = item(entry.token, entry.logprob)
            object["top_logprobs"] = entry.top.map { item($0.token, $0.logprob) }
            previous = entry.token
            return object
        }
    }

    /// The legacy completions' object for `logprobs`, in order.
    mutating func legacy(_ logprobs: [TokenLogprob]) -> [String: Any] {
        var tokens: [String] = [], values: [Double] = [], tops: [[String: Double]] = [], offsets: [Int] = []
        for entry in logprobs {
            let text = String(decoding: bytes(entry.token), as: UTF8.self)
            tokens.append(text)
            values.append(Double(entry.logprob))
            var top: [String: Double] = [:]
            for alternative in entry.top where top[String(decoding: bytes(alternative.token), as: UTF8.self)] == nil {
                top[String(decoding: bytes(alternative.token), as: UTF8.self)] = Double(alternative.logprob)
            }
            tops.append(top)
            offsets.append(offset)
            offset += text.count
            previous = entry.token
        }
        return ["tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets]
    }
}
