import Foundation
import Kernels

/// Options for ``Generator/generate(prompt:options:onToken:)``.
public struct GenerationOptions: Sendable {
    /// Most tokens to generate.
    public var maxTokens: Int
    /// 0 means greedy; otherwise softmax temperature.
    public var temperature: Float
    /// Nucleus mass in (0, 1]; 1 disables the cut.
    public var topP: Float
    public var seed: UInt64
    /// Generation stops after producing any of these (e.g. `<|endoftext|>`).
    public var stopTokens: Set<Int32>

    public init(maxTokens: Int = 256, temperature: Float = 1, topP: Float = 1, seed: UInt64 = 0, stopTokens: Set<Int32> = []) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stopTokens = stopTokens
    }

    /// Rejects NaN, negative or out-of-range values with a message naming the option.
    public func validate() throws {
        guard maxTokens >= 0 else { throw ModelError("max-tokens must be zero or more, got \(maxTokens)") }
        guard temperature.isFinite, temperature >= 0 else { throw ModelError("temperature must be a finite number ≥ 0, got \(temperature)") }
        try NucleusSampler.validate(topP: topP)
    }
}

/// Why generation ended, and how fast it went.
public struct GenerationReport: Sendable {
    public enum Ending: Sendable, Equatable { case maxTokens, stopToken(Int32), stoppedByCaller }
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

    /// `context` caps the tokens held (default: the model's context length).
    public init(model: TransformerLM, context: Int? = nil) {
        session = InferenceSession(model: model, context: context)
    }

    /// Generates after `prompt` (non-empty ids), calling `onToken` with each new id as soon as it
    /// is chosen; returning false from `onToken` stops generation.
    public func generate(prompt: [Int32], options: GenerationOptions, onToken: (Int32) -> Bool) throws -> GenerationReport {
        try options.validate()
        guard !prompt.isEmpty else { throw ModelError("prompt: no tokens (generation needs at least one)") }
        var sampler: any Sampler = options.temperature == 0
            ? GreedySampler()
            : try NucleusSampler(temperature: options.temperature, topP: options.topP, seed: options.seed)
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

        let generationStart = DispatchTime.now().uptimeNanoseconds
        // A non-finite logit would sample garbage (or id 0, as if the text had ended): stop and say so.
        func choose(_ logits: UnsafeBufferPointer<Float>) throws -> Int32 {
            if let bad = logits.firstIndex(where: { !$0.isFinite }) {
                throw ModelError("generation stopped at token \(report.generatedTokens + 1): logit \(bad) is \(logits[bad]); the model's weights or inputs produce non-finite values")
            }
            return sampler.sample(logits)
        }
        var next = try promptLogits.withUnsafeBufferPointer { try choose($0) }
        while report.generatedTokens < options.maxTokens {
            report.generatedTokens += 1
            history.append(next)
            if !onToken(next) { report.ending = .stoppedByCaller; break }
            if options.stopTokens.contains(next) { report.ending = .stopToken(next); break }
            if report.generatedTokens == options.maxTokens { break }
            if session.remaining == 0 {
                history.removeFirst(history.count - keep)  // in place: the capacity stays
                session.reset()
                report.contextSlides += 1
                next = try session.append(history).withUnsafeBufferPointer { try choose($0) }
            } else {
                next = try choose(try session.step(next))
            }
        }
        report.generationSeconds = Double(DispatchTime.now().uptimeNanoseconds - generationStart) * 1e-9
        return report
    }
}
