import XCTest

import Verification

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
    if let worst = Closeness.worst(actual, expected, absolute: absolute, relative: relative) {
        let largest = Closeness.maxDifference(actual, expected)
        XCTFail("\(label): \(worst); max difference \(largest.value) at index \(largest.index) (tolerance \(absolute) + \(relative)·|expected|)",
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
