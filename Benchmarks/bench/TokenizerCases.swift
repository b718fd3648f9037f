/// Tokenizer benchmarks (train and encode MB/s); filled in with the tokenizer.
enum TokenizerCases {
    static func all(quick: Bool) -> [BenchCase] { [] }
}
