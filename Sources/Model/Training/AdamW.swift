import Foundation
import Kernels

/// AdamW's hyperparameters (handout §4.3, algorithm 1). The learning rate is not here: it
/// comes from the schedule at every step.
public struct AdamWOptions: Sendable, Equatable {
    /// β1, β2: decay rates of the first and second moment estimates.
    public var beta1: Float
    public var beta2: Float
    /// ε: added to √v for numerical stability.
    public var epsilon: Float
    /// λ: decoupled weight decay, `θ ← θ − α·λ·θ`.
    public var weightDecay: Float
    /// Whether weight decay also applies to RMSNorm gains. Off by default: decay pulls gains
    /// towards 0, not towards their neutral value 1. Matrices and the embedding are always decayed.
    public var decayGains: Bool

    /// Defaults as commonly used for small language models (β2 = 0.95 as in LLaMA; λ = 0.1).
    public init(beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8, weightDecay: Float = 0.1, decayGains: Bool = false) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decayGains = decayGains
    }

    /// Rejects values outside the ranges the algorithm is defined for, naming the option.
    public func validate() throws {
        guard beta1.isFinite, beta1 >= 0, beta1 < 1 else { throw ModelError("beta1 must be in [0, 1), got \(beta1)") }
        guard beta2.isFinite, beta2 >= 0, beta2 < 1 else { throw ModelError("beta2 must be in [0, 1), got \(beta2)") }
        guard epsilon.isFinite, epsilon > 0 else { throw ModelError("epsilon must be a positive number, got \(epsilon)") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw ModelError("weight decay must be a finite number ≥ 0, got \(weightDecay)") }
    }
}

/// AdamW exactly as the handout's algorithm 1, over the flat parameter buffer: for each
/// parameter θ with gradient g, at step t (from 1),
/// `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`, `α_t = α·√(1−β2ᵗ)/(1−β1ᵗ)`,
/// `θ ← θ − α_t·m/(√v + ε)`, then `θ ← θ − α·λ·θ` on that updated θ, where decay applies (see
/// ``AdamWOptions``). (PyTorch's `AdamW` decays the θ from before the update instead; the two
/// differ by a factor of α·λ in the decay term.)
///
/// Both moments are buffers in the parameters' ``ParameterLayout``, so the update is one flat
/// loop per tensor role. An optimizer may own some of the parameters only (``segments``, for
/// optimizer-state sharding across ranks): its moments then hold those parameters' values one
/// segment after another, and a step updates those parameters alone.
public final class AdamW {
    public let options: AdamWOptions
    public let layout: ParameterLayout
    /// The ranges of the flat parameter buffer this optimizer updates, in order, not overlapping
    /// (one range, all parameters, unless sharded).
    public let segments: [Range<Int>]
    /// First and second moment estimates of the parameters in ``segments``, packed in that order
    /// (unsharded: laid out exactly like the parameters).
    public let firstMoment: TensorBuffer
    public let secondMoment: TensorBuffer
    /// Steps taken so far (t of the last update).
    public private(set) var step: Int

    /// A fresh optimizer over all parameters, or over `segments` of them.
    public init(layout: ParameterLayout, options: AdamWOptions = AdamWOptions(), segments: [Range<Int>]? = nil) throws {
        try options.validate()
        self.options = options
        self.layout = layout
        self.segments = try Self.checked(segments, layout: layout)
        let count = self.segments.reduce(0) { $0 + $1.count }
        firstMoment = TensorBuffer(count: count)
        secondMoment = TensorBuffer(count: count)
        step = 0
    }

    /// Resumes an optimizer from saved moments and step count (a checkpoint).
    public init(layout: ParameterLayout, options: AdamWOptions, firstMoment: TensorBuffer, secondMoment: TensorBuffer, step: Int,
                segments: [Range<Int>]? = nil) throws {
        try options.validate()
        let segments = try Self.checked(segments, layout: layout)
        let count = segments.reduce(0) { $0 + $1.count }
        guard firstMoment.count == count, secondMoment.count == count, step >= 0 else {
            throw ModelError("AdamW state: moments of \(firstMoment.count) and \(secondMoment.count) values at step \(step), the parameters need \(count)")
        }
        (self.options, self.layout, self.segments) = (options, layout, segments)
        (self.firstMoment, self.secondMoment, self.step) = (firstMoment, secondMoment, step)
    }

    private static func checked(_ segments: [Range<Int>]?, layout: ParameterLayout) throws -> [Range<Int>] {
        guard let segments else { return [0..<layout.totalCount] }
        var end = 0
        for segment in segments {
            guard segment.lowerBound >= end, segment.upperBound <= layout.totalCount else {
                throw ModelError("AdamW segments must be in order, not overlapping, within the \(layout.totalCount) parameters; \(segment) is not")
            }
            end = segment.upperBound
        }
        return segments
    }

    /// One update of `parameters` from `gradients` (both in ``layout``; only ``segments`` are
    /// read and written) at `learningRate`.
    public func step(parameters: TensorBuffer, gradients: TensorBuffer, learningRate: Float) {
        precondition(parameters.count == layout.totalCount && gradients.count == layout.totalCount,
                     "AdamW.step: parameters (\(parameters.count)) and gradients (\(gradients.count)) must follow the layout (\(layout.totalCount))")
        step += 1
        let (beta1, beta2, epsilon) = (options.beta1, options.beta2, options.epsilon)
        // Bias corrections in Double: β^t for large t underflows gracefully to 0.
        let correction = Float(Foundation.sqrt(1 - Foundation.pow(Double(beta2), Double(step))) / (1 - Foundation.pow(Double(beta1), Double(step))))
        let stepSize = learningRate * correction
        let theta = parameters.pointer, g = gradients.pointer
        var packed = 0  // where the current segment's moments start
        var entryIndex = 0
        for segment in segments {
            defer { packed += segment.count }
            // Entries and segments are both in buffer order: walk them together.
            while entryIndex < layout.entries.count, layout.entries[entryIndex].range.upperBound <= segment.lowerBound { entryIndex += 1 }
            for entry in layout.entries[entryIndex...] {
                guard entry.offset < segment.upperBound else { break }
                let part = entry.range.clamped(to: segment)
                guard !part.isEmpty else { continue }
                let decay = entry.role == .bias ? 0 : entry.role != .gain || options.decayGains ? learningRate * options.weightDecay : 0
                let start = part.lowerBound
                let m = firstMoment.pointer + packed + (start - segment.lowerBound)
                let v = secondMoment.pointer + packed + (start - segment.lowerBound)
                Threading.parallelRanges(part.count, costPerItem: 12) { range in
                    for j in range {
                        let i = start + j
                        let gradient = g[i]
                        let first = beta1 * m[j] + (1 - beta1) * gradient
                        let second = beta2 * v[j] + (1 - beta2) * gradient * gradient
                        m[j] = first
                        v[j] = second
                        let updated = theta[i] - stepSize * first / (second.squareRoot() + epsilon)
                        theta[i] = updated - decay * updated  // the handout decays the updated θ
                    }
                }
            }
        }
    }
}
