import Foundation

/// Wall-clock samples of one benchmark and their order statistics.
struct Timing: Codable {
    /// Seconds per run, in the order measured.
    var samples: [Double]

    var median: Double {
        let sorted = samples.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    var min: Double { samples.min() ?? .nan }
    var max: Double { samples.max() ?? .nan }
}

/// How long to measure: warm-up runs first (page faults, OpenBLAS thread start-up, caches),
/// then repeated runs until both a minimum time and a minimum count are reached.
struct MeasurementPlan {
    var warmupRuns: Int
    var minimumSeconds: Double
    var minimumRuns: Int
    var maximumRuns: Int

    static let full = MeasurementPlan(warmupRuns: 3, minimumSeconds: 1.0, minimumRuns: 10, maximumRuns: 10_000)
    static let quick = MeasurementPlan(warmupRuns: 1, minimumSeconds: 0.05, minimumRuns: 3, maximumRuns: 200)

    func measure(_ body: () -> Void) -> Timing {
        for _ in 0..<warmupRuns { body() }
        var samples: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        while samples.count < maximumRuns {
            let before = DispatchTime.now().uptimeNanoseconds
            body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - before) * 1e-9)
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            if samples.count >= minimumRuns && elapsed >= minimumSeconds { break }
        }
        return Timing(samples: samples)
    }
}

extension MeasurementPlan {
    /// Times `body` and `reference` in alternation (body, reference, body, …) so that both see the
    /// same machine: on a shared, noisy host the ratio of their medians is far steadier than the
    /// ratio of two separate measurements.
    func measureAlternating(_ body: () -> Void, _ reference: () -> Void) -> (body: Timing, reference: Timing) {
        for _ in 0..<warmupRuns {
            body()
            reference()
        }
        var bodySamples: [Double] = [], referenceSamples: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        while bodySamples.count < maximumRuns {
            var before = DispatchTime.now().uptimeNanoseconds
            body()
            bodySamples.append(Double(DispatchTime.now().uptimeNanoseconds - before) * 1e-9)
            before = DispatchTime.now().uptimeNanoseconds
            reference()
            referenceSamples.append(Double(DispatchTime.now().uptimeNanoseconds - before) * 1e-9)
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            if bodySamples.count >= minimumRuns && elapsed >= 2 * minimumSeconds { break }
        }
        return (Timing(samples: bodySamples), Timing(samples: referenceSamples))
    }
}

/// The process's peak resident set size in bytes (Linux reports ru_maxrss in KiB).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}
