import Foundation
import Kernels

/// Chooses the next token from the last position's logits `[vocab]`.
public protocol Sampler {
    mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32
}

/// Temperature 0: always the most likely token (the first, on ties).
public struct GreedySampler: Sampler {
    public init() {}
    public func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return Int32(best)
    }
}

/// Samples from softmax(logits / temperature), truncated as the OpenAI-style servers do, in this
/// order: `minP` drops tokens less likely than `minP` × the most likely one's probability; `topK`
/// keeps the `topK` most likely of the rest; `topP` keeps the nucleus of those: the smallest set
/// of most likely tokens whose share of their mass reaches `topP` (the token that crosses it
/// stays). `topP = 1`, `topK = 0` and `minP = 0` sample from the whole distribution. Seeded: the
/// same seed gives the same choices. Scratch space is allocated once, for the vocabulary size of
/// the first call.
public struct NucleusSampler: Sampler {
    public let temperature: Float
    public let topP: Float
    /// 0: no cut by rank.
    public let topK: Int
    /// 0: no cut by relative probability.
    public let minP: Float
    private var generator: SeededGenerator
    private var probabilities: [Float] = []
    private var candidates: [Int32] = []

    /// The nucleus mass must be in (0, 1]: the rule ``GenerationOptions/validate()`` applies too.
    public static func validate(topP: Float) throws {
        guard topP.isFinite, topP > 0, topP <= 1 else { throw GenerationError.invalidOption(.topP, problem: "must be in (0, 1], got \(topP)") }
    }

    /// `topK` ≥ 0 and `minP` in [0, 1]: the rules ``GenerationOptions/validate()`` applies too.
    public static func validate(topK: Int, minP: Float) throws {
        guard topK >= 0 else { throw GenerationError.invalidOption(.topK, problem: "must be zero (off) or more, got \(topK)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw GenerationError.invalidOption(.minP, problem: "must be in [0, 1], got \(minP)") }
    }

    /// temperature > 0 and finite; topP in (0, 1]; topK ≥ 0; minP in [0, 1].
    public init(temperature: Float, topP: Float, seed: UInt64, topK: Int = 0, minP: Float = 0) throws {
        guard temperature.isFinite, temperature > 0 else {
            throw GenerationError.invalidOption(.temperature, problem: "must be a positive number for sampling (0 means greedy), got \(temperature)")
        }
        try Self.validate(topP: topP)
        try Self.validate(topK: topK, minP: minP)
        (self.temperature, self.topP, self.topK, self.minP) = (temperature, topP, topK, minP)
        generator = SeededGenerator(seed: seed)
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        let count = logits.count
        if probabilities.count != count {
            probabilities = [Float](repeating: 0, count: count)
            candidates = [Int32](repeating: 0, count: count)
        }
        // softmax(logits / T) in Double-accumulated Float.
        var maximum = -Float.infinity
        for value in logits { maximum = max(maximum, value) }
        var total: Double = 0
        for i in 0..<count {
            let p = expf((logits[i] - maximum) / temperature)
            probabilities[i] = p
            total += Double(p)
        }
        let scale = Float(1 / total)
        for i in 0..<count { probabilities[i] *= scale }
        let draw = Float.random(in: 0..<1, using: &generator)
        if topP >= 1 && topK == 0 && minP == 0 { return sampleAll(draw) }
        return sampleTruncated(draw)
    }

    /// Inverse CDF over every token.
    private func sampleAll(_ draw: Float) -> Int32 {
        var cumulative: Float = 0
        for i in probabilities.indices {
            cumulative += probabilities[i]
            if draw < cumulative { return Int32(i) }
        }
        return Int32(lastNonZero())
    }

    /// Keeps the tokens that could survive the cuts, sorts only those, cuts by rank and by mass,
    /// and draws within the kept mass. For top-p alone a token below (1 − p)/(n − 1) can never be
    /// needed: all such tokens together hold less than 1 − p (llama2.c's trim before the sort).
    private mutating func sampleTruncated(_ draw: Float) -> Int32 {
        let count = probabilities.count
        var cutoff: Float = 0
        if minP > 0 { cutoff = minP * (probabilities.max() ?? 0) }
        if topP < 1 && topK == 0 && minP == 0 && count > 1 { cutoff = (1 - topP) / Float(count - 1) }
        if topK > 0 && topK < count { cutoff = max(cutoff, kthLargest(topK)) }
        var kept = 0
        for i in 0..<count where probabilities[i] >= cutoff {
            candidates[kept] = Int32(i)
            kept += 1
        }
        let probabilities = self.probabilities
        candidates[0..<kept].sort { probabilities[Int($0)] > probabilities[Int($1)] || (probabilities[Int($0)] == probabilities[Int($1)] && $0 < $1) }
        if topK > 0 { kept = min(kept, topK) }  // ties at the k-th probability: the lower ids stay
        // Top-p over the kept tokens' share of the mass (all of it when nothing else cut).
        var keptMass: Float = 1
        if topK > 0 || minP > 0 {
            keptMass = 0
            for index in 0..<kept { keptMass += probabilities[Int(candidates[index])] }
        }
        var mass: Float = 0
        var last = kept - 1
        for index in 0..<kept {
            mass += probabilities[Int(candidates[index])]
            if mass >= topP * keptMass { last = index; break }
        }
        let target = draw * mass
        var cumulative: Float = 0
        for index in 0...last {
            cumulative += probabilities[Int(candidates[index])]
            if target < cumulative { return candidates[index] }
        }
        return candidates[last]
    }

    /// The `k`-th largest probability (k < count), from one pass keeping the k largest sorted.
    private func kthLargest(_ k: Int) -> Float {
        var largest: [Float] = []
        largest.reserveCapacity(k + 1)
        for p in probabilities where largest.count < k || p > largest[k - 1] {
            var low = 0, high = largest.count
            while low < high {
                let middle = (low + high) / 2
                if largest[middle] >= p { low = middle + 1 } else { high = middle }
            }
            largest.insert(p, at: low)
            if largest.count > k { largest.removeLast() }
        }
        return largest[k - 1]
    }

    private func lastNonZero() -> Int {
        probabilities.lastIndex(where: { $0 > 0 }) ?? 0
    }
}
