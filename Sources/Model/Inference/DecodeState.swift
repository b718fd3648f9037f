import Foundation
import Tokenizer

/// A sampled token's log-probability under the model, with the most likely alternatives at that
/// step: OpenAI's `logprobs`. The values are the log-softmax of the model's logits, before any
/// penalty, bias or temperature (what the model thinks, not what the sampler was told).
public struct TokenLogprob: Sendable, Equatable {
    public var token: Int32
    public var logprob: Float
    /// The most likely tokens at this step, most likely first (ties: lower id first).
    public var top: [(token: Int32, logprob: Float)]

    public static func == (a: TokenLogprob, b: TokenLogprob) -> Bool {
        a.token == b.token && a.logprob == b.logprob && a.top.map(\.token) == b.top.map(\.token) && a.top.map(\.logprob) == b.top.map(\.logprob)
    }
}

/// One request's decoding, token by token: the one loop body that `lm generate`, `lm chat` and
/// the server all run. Given a step's logits it checks them, notes the log-probabilities asked
/// for, runs the logit processors (penalties, bias), samples, and then decides what the token
/// means: text to show (through the incremental detokenizer and the stop-string filter), or the
/// end (a stop token, a stop string, the token budget, a full context).
///
/// The caller owns the model and the cache: it feeds the prompt, calls ``advance(_:roomLeft:)``
/// with each step's logits, and feeds back ``Step/token`` until a step carries a ``Finish``.
public struct DecodeState {
    /// Why decoding ended.
    public enum Finish: Sendable, Equatable {
        /// A stop token was sampled (it is not part of the answer).
        case stopToken(Int32)
        /// A stop string appeared in the text (the text ends before it).
        case stopString
        /// `maxTokens` answer tokens were generated.
        case maxTokens
        /// The context has no room for another token.
        case contextFull
        /// The answer is a whole JSON document that nothing can extend (``GenerationOptions/responseSchema``).
        case documentComplete
    }

    /// What one sampled token gave.
    public struct Step {
        public var token: Int32
        /// Text now safe to show (may be empty: a partial character, or text that may begin a
        /// stop string); at a finish, everything still held back.
        public var text: String
        /// When ``GenerationOptions/logprobs`` is set.
        public var logprob: TokenLogprob?
        /// Set on the last step.
        public var finish: Finish?
    }

    public let options: GenerationOptions
    /// Answer tokens so far (a stop token is not one).
    public private(set) var generated = 0
    private var sampler: any Sampler
    private var processors: [any LogitProcessor] = []
    /// The JSON constraint, applied after the other processors.
    private var constraint: JSONConstraint?
    private let stops: Set<Int32>
    private var text: IncrementalDecoder?
    private var filter: StopStringFilter
    private var processed: [Float] = []
    private let vocabularySize: Int

    /// `prompt` (non-empty) is what the model has read; `tokenizer`, when given, turns tokens into
    /// text (its stop tokens join `options.stopTokens`). `stopStrings` need the tokenizer.
    public init(prompt: [Int32], options: GenerationOptions, vocabularySize: Int, tokenizer: (any TextTokenizer)? = nil,
                stopStrings: [String] = []) throws {
        try options.validate()
        guard let last = prompt.last else { throw GenerationError.emptyPrompt }
        if let bad = options.logitBias.keys.sorted().first(where: { Int($0) >= vocabularySize }) {
            throw GenerationError.invalidOption(.logitBias, problem: "names token id \(bad), outside the vocabulary of \(vocabularySize)")
        }
        self.options = options
        self.vocabularySize = vocabularySize
        sampler = options.temperature == 0
            ? GreedySampler()
            : try NucleusSampler(temperature: options.temperature, topP: options.topP, seed: options.seed, topK: options.topK, minP: options.minP)
        let penalties = RepetitionPenalties(prompt: prompt, repetition: options.repetitionPenalty, presence: options.presencePenalty,
                                            frequency: options.frequencyPenalty)
        if penalties.isActive { processors.append(penalties) }
        if !options.logitBias.isEmpty { processors.append(LogitBias(options.logitBias)) }
        stops = options.stopTokens.union(tokenizer?.stopTokens ?? [])
        if let schema = options.responseSchema {
            guard let tokenizer else { throw GenerationError.unsupported("a response schema needs the model's tokenizer (the text of each token)") }
            constraint = JSONConstraint(schema: schema, vocabulary: TokenVocabulary.shared(for: tokenizer, excluded: stops), stops: stops)
        }
        if let tokenizer {
            text = IncrementalDecoder(tokenizer: tokenizer)
            text?.follow(last)
        }
        filter = StopStringFilter(stops: stopStrings)
    }

    /// Chooses the next token from `logits` (`[vocab]`, the last position's) and says what it
    /// gave. `roomLeft`: whether the context can take this token for another step (false ends
    /// decoding after this token). Throws on a non-finite logit, naming it.
    public mutating func advance(_ logits: UnsafeBufferPointer<Float>, roomLeft: Bool = true) throws -> Step {
        if let bad = logits.firstIndex(where: { !$0.isFinite }) {
            throw GenerationError.nonFiniteLogit(token: generated + 1, index: bad, value: logits[bad])
        }
        let token = try choose(logits)
        let logprob = options.logprobs.map { Self.logprob(of: token, in: logits, top: $0) }
        for index in processors.indices { processors[index].learn(token) }
        constraint?.learn(token)
        if stops.contains(token) {
            return Step(token: token, text: flush(), logprob: logprob, finish: .stopToken(token))
        }
        generated += 1
        var shown = ""
        if text != nil {
            let (released, stopped) = filter.append(try text!.append(token))
            if stopped { return Step(token: token, text: released, logprob: logprob, finish: .stopString) }
            shown = released
        }
        if constraint?.isFinished == true { return Step(token: token, text: shown + flush(), logprob: logprob, finish: .documentComplete) }
        if generated >= options.maxTokens { return Step(token: token, text: shown + flush(), logprob: logprob, finish: .maxTokens) }
        if !roomLeft { return Step(token: token, text: shown + flush(), logprob: logprob, finish: .contextFull) }
        return Step(token: token, text: shown, logprob: logprob, finish: nil)
    }

    /// The processors run on a copy (the caller's logits are the model's, and may be reported),
    /// then the sampler.
    private mutating func choose(_ logits: UnsafeBufferPointer<Float>) throws -> Int32 {
        guard !processors.isEmpty || constraint != nil else { return sampler.sample(logits) }
        if processed.count != logits.count { processed = [Float](repeating: 0, count: logits.count) }
        return try processed.withUnsafeMutableBufferPointer { copy in
            _ = copy.initialize(from: logits)
            for index in processors.indices { processors[index].process(copy) }
            constraint?.process(copy)
            guard copy.contains(where: { $0 > -.infinity }) else {
                throw GenerationError.noTokenAllowed(afterTokens: generated, constrained: constraint != nil)
            }
            return sampler.sample(UnsafeBufferPointer(copy))
        }
    }

    /// What the detokenizer and the stop-string filter still hold.
    private mutating func flush() -> String {
        guard text != nil else { return "" }
        let (released, _) = filter.append(text!.finish())
        return released + filter.finish()
    }

    /// `token`'s log-softmax in `logits`, and the `top` most likely tokens' (Double sums).
    public static func logprob(of token: Int32, in logits: UnsafeBufferPointer<Float>, top: Int) -> TokenLogprob {
        var maximum = -Float.infinity
        for value in logits { maximum = max(maximum, value) }
        var total = 0.0
        for value in logits { total += exp(Double(value - maximum)) }
        let logTotal = Float(log(total)) + maximum
        var best: [(token: Int32, logprob: Float)] = []
        if top > 0 {
            best.reserveCapacity(top + 1)
            for (index, value) in logits.enumerated() where best.count < top || value > best[top - 1].logprob {
                var position = best.count
                while position > 0 && best[position - 1].logprob < value { position -= 1 }
                best.insert((Int32(index), value), at: position)
                if best.count > top { best.removeLast() }
            }
        }
        return TokenLogprob(token: token, logprob: logits[Int(token)] - logTotal, top: best.map { ($0.token, $0.logprob - logTotal) })
    }
}
