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

/// Samples from softmax(logits / temperature), restricted to the nucleus: the smallest set of
/// most likely tokens whose probability mass reaches `topP` (the token that crosses `topP`
/// stays). `topP = 1` samples from the whole distribution. Seeded: the same seed gives the same
/// choices. Scratch space is allocated once, for the vocabulary size of the first call.
public struct NucleusSampler: Sampler {
    public let temperature: Float
    public let topP: Float
    private var generator: SeededGenerator
    private var probabilities: [Float] = []
    private var candidates: [Int32] = []

    /// temperature > 0 and finite; topP in (0, 1].
    /// The nucleus mass must be in (0, 1]: the rule ``GenerationOptions/validate()`` applies too.
    public static func validate(topP: Float) throws {
        guard topP.isFinite, topP > 0, topP <= 1 else { throw ModelError("top-p must be in (0, 1], got \(topP)") }
    }

    public init(temperature: Float, topP: Float, seed: UInt64) throws {
        guard temperature.isFinite, temperature > 0 else {
            throw ModelError("temperature must be a positive number for sampling (0 means greedy), got \(temperature)")
        }
        try Self.validate(topP: topP)
        self.temperature = temperature
        self.topP = topP
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
        if topP >= 1 { return sampleAll(draw) }
        return sampleNucleus(draw)
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

    /// Keeps tokens that could be in the nucleus, sorts only those, cuts where the mass reaches
    /// top-p, and draws within the kept mass. A token below (1 − p)/(n − 1) can never be needed:
    /// all such tokens together hold less than 1 − p (llama2.c's trim before the sort).
    private mutating func sampleNucleus(_ draw: Float) -> Int32 {
        let count = probabilities.count
        let cutoff = count > 1 ? (1 - topP) / Float(count - 1) : 0
        var kept = 0
        for i in 0..<count where probabilities[i] >= cutoff {
            candidates[kept] = Int32(i)
            kept += 1
        }
        let probabilities = self.probabilities
        candidates[0..<kept].sort { probabilities[Int($0)] > probabilities[Int($1)] || (probabilities[Int($0)] == probabilities[Int($1)] && $0 < $1) }
        var mass: Float = 0
        var last = kept - 1
        for index in 0..<kept {
            mass += probabilities[Int(candidates[index])]
            if mass >= topP { last = index; break }
        }
        let target = draw * mass
        var cumulative: Float = 0
        for index in 0...last {
            cumulative += probabilities[Int(candidates[index])]
            if target < cumulative { return candidates[index] }
        }
        return candidates[last]
    }

    private func lastNonZero() -> Int {
        probabilities.lastIndex(where: { $0 > 0 }) ?? 0
    }
}
