import XCTest

/// Where and by how much two arrays differ most.
public struct Discrepancy: CustomStringConvertible {
    public let index: Int
    public let actual: Double
    public let expected: Double
    public let excess: Double
    public var description: String {
        "max excess over tolerance at index \(index): got \(actual), expected \(expected) (difference \(abs(actual - expected)))"
    }
}

/// Asserts |actual − expected| ≤ absolute + relative·|expected| element by element. On failure
/// prints the largest difference and its index, with `label` naming the check.
public func assertClose<A: BinaryFloatingPoint, E: BinaryFloatingPoint>(
    _ actual: [A], _ expected: [E], absolute: Double, relative: Double = 0, _ label: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("\(label): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    var worst: Discrepancy?
    var maxDifference = 0.0, maxIndex = 0
    for i in actual.indices {
        let a = Double(actual[i]), e = Double(expected[i])
        let difference = abs(a - e)
        if !(difference <= maxDifference) || difference.isNaN { maxDifference = difference; maxIndex = i }
        let excess = difference - (absolute + relative * abs(e))
        if excess > 0 || a.isNaN != e.isNaN {
            if worst == nil || excess > worst!.excess || excess.isNaN {
                worst = Discrepancy(index: i, actual: a, expected: e, excess: excess)
            }
        }
    }
    if let worst {
        XCTFail("\(label): \(worst); max difference \(maxDifference) at index \(maxIndex) (tolerance \(absolute) + \(relative)·|expected|)",
                file: file, line: line)
    }
}

/// The absolute tolerance for a Float dot product of length `reduction` over unit-scale inputs:
/// rounding error grows at most linearly with the reduction length, so the bound does too.
public func reductionTolerance(_ reduction: Int, scale: Double = 1) -> Double {
    4 * Double(Float.ulpOfOne) * Double(max(reduction, 1)) * scale
}

/// Widens a Float array to Double for the references.
public func widened(_ values: [Float]) -> [Double] { values.map(Double.init) }
