/// Changes the logits of each step before the sampler sees them. A processor is made for one
/// request, sees its prompt when made, and learns every token sampled after that (penalties
/// count them). Processors never change the log-probabilities a request reports: those are the
/// model's (``DecodeState``).
public protocol LogitProcessor {
    /// Changes `logits` (`[vocab]`) in place.
    mutating func process(_ logits: UnsafeMutableBufferPointer<Float>)
    /// Records the token sampled from the processed logits.
    mutating func learn(_ token: Int32)
}

/// Penalties on tokens already seen, with the semantics of vLLM's OpenAI server (whose names the
/// API uses):
/// - `repetition` (CTRL's, llama.cpp's `repeat_penalty`) over the prompt and the answer: a seen
///   token's logit is divided by it when positive, multiplied by it when negative; 1 is off.
/// - `presence` and `frequency` (OpenAI's) over the answer only: a token's logit is lowered by
///   `presence` once it has appeared and by `frequency` for each time it has; 0 is off.
public struct RepetitionPenalties: LogitProcessor {
    public let repetition: Float, presence: Float, frequency: Float
    /// Tokens of the prompt and the answer (the repetition penalty's set).
    private var seen: Set<Int32>
    /// How often each token appears in the answer.
    private var counts: [Int32: Int] = [:]

    public init(prompt: [Int32], repetition: Float, presence: Float, frequency: Float) {
        (self.repetition, self.presence, self.frequency) = (repetition, presence, frequency)
        seen = repetition != 1 ? Set(prompt) : []
    }

    /// Whether any penalty is on.
    public var isActive: Bool { repetition != 1 || presence != 0 || frequency != 0 }

    public mutating func process(_ logits: UnsafeMutableBufferPointer<Float>) {
        if repetition != 1 {
            for token in seen where Int(token) < logits.count {
                let logit = logits[Int(token)]
                logits[Int(token)] = logit > 0 ? logit / repetition : logit * repetition
            }
        }
        guard presence != 0 || frequency != 0 else { return }
        for (token, count) in counts where Int(token) < logits.count {
            logits[Int(token)] -= presence + frequency * Float(count)
        }
    }

    public mutating func learn(_ token: Int32) {
        if repetition != 1 { seen.insert(token) }
        if presence != 0 || frequency != 0 { counts[token, default: 0] += 1 }
    }
}

/// OpenAI's `logit_bias`: a value added to the logits of given token ids (−100 bans a token,
/// +100 all but forces it).
public struct LogitBias: LogitProcessor {
    public let bias: [Int32: Float]

    public init(_ bias: [Int32: Float]) { self.bias = bias }

    public func process(_ logits: UnsafeMutableBufferPointer<Float>) {
        for (token, value) in bias where Int(token) < logits.count { logits[Int(token)] += value }
    }

    public func learn(_ token: Int32) {}
}
