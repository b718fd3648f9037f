import Foundation
import TensorIO

/// The one checked path for sizes that come from outside (a `config.json`): products that
/// cannot overflow, and bounds stated in the error, checked before anything is allocated.
enum SizeLimits {
    /// `factors` multiplied, or nil when the product overflows `Int` (the same check as every
    /// tensor shape read from a file).
    static func product(_ factors: [Int]) -> Int? { ShapeText.elementCount(factors) }

    /// a + b, or nil on overflow.
    static func sum(_ terms: [Int?]) -> Int? {
        var result = 0
        for term in terms {
            guard let term else { return nil }
            let (next, overflow) = result.addingReportingOverflow(term)
            if overflow { return nil }
            result = next
        }
        return result
    }

    /// "4.0 TB", "512.0 MB", in powers of 1000.
    static func bytes(_ count: Double) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
        var value = count, unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return String(format: unit == 0 ? "%.0f %@" : "%.1f %@", value, units[unit])
    }

    /// The memory this machine has: no model larger than this can be loaded or trained here.
    static var physicalMemory: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    /// Stops, before anything is allocated, unless `bytes` (counted in Double, so it cannot
    /// overflow) fit in this machine's memory, naming what would need them.
    static func requireMemory(_ bytes: Double, for what: @autoclosure () -> String) throws {
        guard bytes <= Double(physicalMemory) * 0.9 else {
            throw ModelError("\(what()) would need \(Self.bytes(bytes)) of memory; this machine has \(Self.bytes(Double(physicalMemory)))")
        }
    }
}
