import Foundation

/// The handout's cosine schedule with linear warm-up (§4.4): for step t,
/// `α_t = t/T_w · α_max` while t < T_w; `α_min + ½(1 + cos((t − T_w)/(T_c − T_w) · π))(α_max − α_min)`
/// for T_w ≤ t ≤ T_c; `α_min` after T_c.
public struct CosineSchedule: Sendable, Equatable, Codable {
    /// α_max, α_min.
    public var maxLearningRate: Double
    public var minLearningRate: Double
    /// T_w: steps of linear warm-up.
    public var warmupSteps: Int
    /// T_c: the step at which the cosine reaches α_min.
    public var cosineSteps: Int

    public init(maxLearningRate: Double, minLearningRate: Double, warmupSteps: Int, cosineSteps: Int) {
        self.maxLearningRate = maxLearningRate
        self.minLearningRate = minLearningRate
        self.warmupSteps = warmupSteps
        self.cosineSteps = cosineSteps
    }

    /// Rejects schedules the formula does not define, naming the value.
    public func validate() throws {
        guard maxLearningRate.isFinite, maxLearningRate > 0 else { throw ModelError("max learning rate must be positive, got \(maxLearningRate)") }
        guard minLearningRate.isFinite, minLearningRate >= 0, minLearningRate <= maxLearningRate else {
            throw ModelError("min learning rate must be in [0, max learning rate \(maxLearningRate)], got \(minLearningRate)")
        }
        guard warmupSteps >= 0 else { throw ModelError("warm-up steps must be zero or more, got \(warmupSteps)") }
        guard cosineSteps >= warmupSteps else {
            throw ModelError("cosine steps (\(cosineSteps)) must be at least the warm-up steps (\(warmupSteps))")
        }
    }

    /// α_t.
    public func learningRate(at step: Int) -> Double {
        if step < warmupSteps { return Double(step) / Double(warmupSteps) * maxLearningRate }
        if step > cosineSteps || cosineSteps == warmupSteps { return minLearningRate }
        let progress = Double(step - warmupSteps) / Double(cosineSteps - warmupSteps)
        return minLearningRate + 0.5 * (1 + Foundation.cos(progress * Double.pi)) * (maxLearningRate - minLearningRate)
    }
}
