/// Where and by how much two arrays differ most beyond a tolerance.
public struct Discrepancy: CustomStringConvertible, Sendable {
    public let index: Int
    public let actual: Double
    public let expected: Double
    public let excess: Double
    public var description: String {
        "max excess over tolerance at index \(index): got \(actual), expected \(expected) (difference \(abs(actual - expected)))"
    }
}

/// The comparison tests and the bench share: |actual − expected| ≤ absolute + relative·|expected|
/// element by element, NaN only where NaN is expected.
public enum Closeness {
    /// The element that exceeds the tolerance by most, or nil when all are within it.
    public static func worst<A: BinaryFloatingPoint, E: BinaryFloatingPoint>(
        _ actual: [A], _ expected: [E], absolute: Double, relative: Double = 0
    ) -> Discrepancy? {
        precondition(actual.count == expected.count, "Closeness: \(actual.count) values, expected \(expected.count)")
        var worst: Discrepancy?
        for i in actual.indices {
            let a = Double(actual[i]), e = Double(expected[i])
            let excess = abs(a - e) - (absolute + relative * abs(e))
            guard excess > 0 || a.isNaN != e.isNaN else { continue }
            if worst == nil || excess > worst!.excess || excess.isNaN {
                worst = Discrepancy(index: i, actual: a, expected: e, excess: excess)
            }
        }
        return worst
    }

    /// The largest absolute difference and its index.
    public static func maxDifference<A: BinaryFloatingPoint, E: BinaryFloatingPoint>(_ actual: [A], _ expected: [E]) -> (value: Double, index: Int) {
        var result = (value: 0.0, index: 0)
        for i in actual.indices {
            let difference = abs(Double(actual[i]) - Double(expected[i]))
            if !(difference <= result.value) { result = (difference, i) }
        }
        return result
    }
}
