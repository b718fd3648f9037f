import ArgumentParser
import Foundation

/// Lists of indices on the command line: `3`, `0,5,30`, `0-10`, `1,4-6`.
enum IndexList {
    static func parse(_ text: String, option: String, range: ClosedRange<Int>) throws -> [Int] {
        var result: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard (1...2).contains(bounds.count), let low = bounds[0], let high = bounds.last!, low <= high else {
                throw ValidationError("\(option): '\(part)' is not an index or a range such as 2-5")
            }
            guard range.contains(low), range.contains(high) else { throw ValidationError("\(option): \(part) is outside \(range.lowerBound)…\(range.upperBound)") }
            result += Array(low...high)
        }
        return result
    }
}
