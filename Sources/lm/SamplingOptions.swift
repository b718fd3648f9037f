import ArgumentParser
import Model

/// The sampling options `lm generate` and `lm chat` share with the server beside temperature and
/// top-p (``GenerationOptions``, run by one ``DecodeState``): truncation by rank and by relative
/// probability, penalties on repeats, and biases on given tokens.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Keep only the k most likely tokens; 0 is off.") var topK: Int = 0
    @Option(help: "Drop tokens less likely than min-p × the most likely one's probability; 0 is off.") var minP: Float = 0
    @Option(help: "Divide (or multiply, when negative) the logits of tokens already in the prompt or the answer (llama.cpp's repeat penalty); 1 is off.")
    var repetitionPenalty: Float = 1
    @Option(help: "Lower the logits of tokens already in the answer by this, once (OpenAI's presence penalty, -2…2).") var presencePenalty: Float = 0
    @Option(help: "Lower the logits of tokens already in the answer by this per occurrence (OpenAI's frequency penalty, -2…2).")
    var frequencyPenalty: Float = 0
    @Option(help: "Add to given tokens' logits: 'id:bias,id:bias' (bias in -100…100; -100 bans a token).") var logitBias: String?

    /// The biases of `--logit-bias`, each element checked.
    func biases() throws -> [Int32: Float] {
        guard let logitBias else { return [:] }
        let pairs = try CommaSeparatedList.parse(logitBias, option: "--logit-bias", kind: "'id:bias' (an integer id, a number)") { item -> (Int32, Float)? in
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let id = Int32(parts[0].trimmingCharacters(in: .whitespaces)),
                  let bias = Float(parts[1].trimmingCharacters(in: .whitespaces)) else { return nil }
            return (id, bias)
        }
        return Dictionary(pairs, uniquingKeysWith: { $1 })
    }

    /// These options on top of `options`.
    func applied(to options: GenerationOptions) throws -> GenerationOptions {
        var options = options
        options.topK = topK
        options.minP = minP
        options.repetitionPenalty = repetitionPenalty
        options.presencePenalty = presencePenalty
        options.frequencyPenalty = frequencyPenalty
        options.logitBias = try biases()
        return options
    }

    /// Refuses a `--logit-bias` id outside the model's vocabulary before anything is printed.
    func check(vocabularySize: Int) throws {
        if let bad = try biases().keys.sorted().first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            throw ValidationError("--logit-bias: token id \(bad) is outside the model's vocabulary of \(vocabularySize)")
        }
    }
}
