/// Whole-model benchmarks (block, LM forward, decode); filled in with the Model target.
enum ModelCases {
    static func all(_ shape: BenchShape, quick: Bool) -> [BenchCase] { [] }
}
