import Foundation
import Kernels
import Tokenizer

/// How to choose tokens and when to stop: the options of ``Generator``, ``ChatSession`` and
/// ``ServingEngine``, all run by one ``DecodeState``.
public struct GenerationOptions: Sendable {
    /// Most tokens to generate.
    public var maxTokens: Int
    /// 0 means greedy; otherwise softmax temperature.
    public var temperature: Float
    /// Nucleus mass in (0, 1]; 1 disables the cut.
    public var topP: Float
    /// Keep only this many most likely tokens; 0 disables the cut.
    public var topK: Int
    /// Drop tokens less likely than `minP` × the most likely one's probability; 0 disables it.
    public var minP: Float
    public var seed: UInt64
    /// Generation stops after producing any of these (e.g. `<|endoftext|>`).
    public var stopTokens: Set<Int32>
    /// CTRL's repetition penalty (llama.cpp's `repeat_penalty`) over prompt and answer; 1 is off
    /// (``RepetitionPenalties``).
    public var repetitionPenalty: Float
    /// OpenAI's presence and frequency penalties over the answer, in [−2, 2]; 0 is off.
    public var presencePenalty: Float
    public var frequencyPenalty: Float
    /// Added to the logits of these ids before sampling (OpenAI's `logit_bias`, in [−100, 100]).
    public var logitBias: [Int32: Float]
    /// Report each sampled token's log-probability and this many most likely alternatives
    /// (0…20) with it; nil reports none (``TokenLogprob``).
    public var logprobs: Int?
    /// Constrain the answer to a JSON document matching this schema (``JSONConstraint``); needs
    /// the tokenizer.
    public var responseSchema: JSONSchema?

    public init(maxTokens: Int = 256, temperature: Float = 1, topP: Float = 1, seed: UInt64 = 0, stopTokens: Set<Int32> = [],
                topK: Int = 0, minP: Float = 0, repetitionPenalty: Float = 1, presencePenalty: Float = 0, frequencyPenalty: Float = 0,
                logitBias: [Int32: Float] = [:], logprobs: Int? = nil, responseSchema: JSONSchema? = nil) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stopTokens = stopTokens
        self.topK = topK
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logitBias = logitBias
        self.logprobs = logprobs
        self.responseSchema = responseSchema
    }

    /// Rejects NaN, negative or out-of-range values: ``GenerationError/invalidOption(_:problem:)``
    /// naming the option.
    public func validate() throws {
        guard maxTokens >= 0 else { throw GenerationError.invalidOption(.maxTokens, problem: "must be zero or more, got \(maxTokens)") }
        guard temperature.isFinite, temperature >= 0 else {
            throw GenerationError.invalidOption(.temperature, problem: "must be a finite number ≥ 0, got \(temperature)")
        }
        try NucleusSampler.validate(topP: topP)
        try NucleusSampler.validate(topK: topK, minP: minP)
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw GenerationError.invalidOption(.repetitionPenalty, problem: "must be a positive number (1 is off), got \(repetitionPenalty)")
        }
        for (option, value) in [(GenerationOption.presencePenalty, presencePenalty), (.frequencyPenalty, frequencyPenalty)] {
            guard value.isFinite, value >= -2, value <= 2 else { throw GenerationError.invalidOption(option, problem: "must be in [-2, 2], got \(value)") }
        }
        for (token, value) in logitBias.sorted(by: { $0.key < $1.key }) {
            guard token >= 0 else { throw GenerationError.invalidOption(.logitBias, problem: "names token id \(token), which is negative") }
            guard value.isFinite, value >= -100, value <= 100 else {
                throw GenerationError.invalidOption(.logitBias, problem: "of token \(token) must be in [-100, 100], got \(value)")
            }
        }
        if let logprobs, logprobs < 0 || logprobs > 20 { throw GenerationError.invalidOption(.topLogprobs, problem: "must be in 0…20, got \(logprobs)") }
    }
}

/// Why generation ended, and how fast it went.
public struct GenerationReport: Sendable {
    public enum Ending: Sendable, Equatable {
        case maxTokens, stopToken(Int32), stoppedByCaller
        /// A whole JSON document matching the response schema.
        case documentComplete
    }
    public var ending: Ending
    public var promptTokens: Int
    public var generatedTokens: Int
    public var promptSeconds: Double
    public var generationSeconds: Double
    /// How many times the context filled and the window slid.
    public var contextSlides: Int

    public var promptTokensPerSecond: Double { Double(promptTokens) / max(promptSeconds, 1e-9) }
    public var generationTokensPerSecond: Double { Double(generatedTokens) / max(generationSeconds, 1e-9) }
}

/// Autoregressive generation with a KV cache: one batched prefill of the prompt, then one
/// cached step per token; only the last position's logits reach the sampler.
///
/// When the context fills, the window slides: the latest `context_length / 2` tokens are kept,
/// prefilled again, and generation continues (so the cache is never read past its end). The
/// model then no longer sees the earliest tokens; ``GenerationReport/contextSlides`` counts this.
public final class Generator {
    public let session: InferenceSession
    /// The text of tokens, for a ``GenerationOptions/responseSchema`` (nil: none can be used).
    public let tokenizer: (any TextTokenizer)?

    /// `context` caps the tokens held (default: the model's context length).
    public init(model: TransformerLM, context: Int? = nil, tokenizer: (any TextTokenizer)? = nil) {
        session = InferenceSession(model: model, context: context)
        self.tokenizer = tokenizer
    }

    /// Generates after `prompt` (non-empty ids), calling `onToken` with each new id as soon as it
    /// is chosen (a stop token too, last); returning false from `onToken` stops generation.
    public func generate(prompt: [Int32], options: GenerationOptions, onToken: (Int32) -> Bool) throws -> GenerationReport {
        // The tokenizer only where a schema needs it: the ids are the caller's to print.
        var state = try DecodeState(prompt: prompt, options: options, vocabularySize: session.model.config.vocabSize,
                                    tokenizer: options.responseSchema != nil ? tokenizer : nil)
        let context = session.context
        let keep = max(1, context / 2)
        var history = Array(prompt.suffix(context))
        history.reserveCapacity(context + 1)  // appending a generated id never reallocates
        var report = GenerationReport(ending: .maxTokens, promptTokens: prompt.count, generatedTokens: 0,
                                      promptSeconds: 0, generationSeconds: 0, contextSlides: 0)
        session.reset()
        let promptStart = DispatchTime.now().uptimeNanoseconds
        let promptLogits = try session.append(history)
        report.promptSeconds = Double(DispatchTime.now().uptimeNanoseconds - promptStart) * 1e-9
        guard options.maxTokens > 0 else { return report }

        let generationStart = DispatchTime.now().uptimeNanoseconds
        var step = try promptLogits.withUnsafeBufferPointer { try state.advance($0) }
        while true {
            report.generatedTokens += 1
            history.append(step.token)
            if !onToken(step.token) { report.ending = .stoppedByCaller; break }
            if let finish = step.finish {
                if case .stopToken(let token) = finish { report.ending = .stopToken(token) }
                if finish == .documentComplete { report.ending = .documentComplete }
                break
            }
            if session.remaining == 0 {
                // The window slides (the cache never fills here, so `roomLeft` stays true).
                history.removeFirst(history.count - keep)  // in place: the capacity stays
                session.reset()
                report.contextSlides += 1
                step = try session.append(history).withUnsafeBufferPointer { try state.advance($0) }
            } else {
                step = try state.advance(try session.step(step.token))
            }
        }
        report.generationSeconds = Double(DispatchTime.now().uptimeNanoseconds - generationStart) * 1e-9
        return report
    }
}
