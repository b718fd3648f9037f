/// What a vocabulary's model expects around byte-pair merging, beyond the vocabulary and the
/// merges: how text is pre-tokenized, whether whole-token pieces skip merging, what goes
/// before a prompt and which ids end a generation. The defaults are this engine's own
/// tokenizers (GPT-2's pattern, tiktoken's whole-token shortcut, no BOS, `<|endoftext|>`).
public struct TokenizerRules: Sendable, Equatable {
    public var preTokenization: PreTokenization
    /// A piece that is itself a token becomes that token without merging (tiktoken, llama.cpp's
    /// `ignore_merges` for Llama 3). When false, merges always run, as in GPT-2's own encoder,
    /// Hugging Face's BPE without `ignore_merges` and llama.cpp for `gpt-2` and `smollm`; the two
    /// differ only for tokens the merges cannot build.
    public var ignoresMerges: Bool
    /// Ids put before every prompt (BOS, when the model's files ask for it).
    public var promptPrefix: [Int32]
    /// Ids that end a generated text (EOS, end of turn); nil means `<|endoftext|>` when the
    /// vocabulary has it.
    public var stopTokens: [Int32]?
    /// Whether a vocabulary may lack tokens for some single bytes (SmolLM2's has none for 21 of
    /// them, control characters and bytes rare in UTF-8). Such a byte then stays a symbol that
    /// merges with nothing and is left out of the ids, as llama.cpp and Hugging Face's BPE
    /// without an unknown token drop it; when false, such a vocabulary is refused.
    public var dropsBytesWithoutToken: Bool

    public init(preTokenization: PreTokenization = .gpt2, ignoresMerges: Bool = true, promptPrefix: [Int32] = [], stopTokens: [Int32]? = nil,
                dropsBytesWithoutToken: Bool = false) {
        self.preTokenization = preTokenization
        self.ignoresMerges = ignoresMerges
        self.promptPrefix = promptPrefix
        self.stopTokens = stopTokens
        self.dropsBytesWithoutToken = dropsBytesWithoutToken
    }
}
