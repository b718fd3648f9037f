/// SplitMix64: a small, fast, seedable random-number generator. Every random choice in this
/// package (initialisation, sampling, test data, benchmark inputs) draws from one, so the same
/// seed gives the same numbers on every run and machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    /// The whole state: `SeededGenerator(seed: g.state)` continues exactly where `g` is, which
    /// is how a resumed training run draws the same batches it would have drawn.
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` values uniform in `-scale...scale`.
    public mutating func uniform(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in Float.random(in: -scale...scale, using: &self) }
    }
}
