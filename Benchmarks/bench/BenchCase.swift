import Foundation
import Verification

/// One benchmark: what it times, the work one run does, and how to set it up.
struct BenchCase {
    /// Unique name, matched by `--filter`: `group/what[/batch]`.
    let name: String
    /// The shapes involved, for the table.
    let detail: String
    /// GEMM calls one run performs (empty for kernels with no GEMM); their raw-sgemm time in the
    /// same process is the ceiling this case is compared with.
    var gemms: GemmWork = [:]
    /// FLOPs one run performs outside GEMMs that we choose to count (0 for memory-bound kernels).
    var otherFlops: Double = 0
    /// Tokens one run processes, for tokens/s; nil where tokens mean nothing.
    var tokens: Int? = nil
    /// Input bytes one run processes, for MB/s (tokenizer); nil otherwise.
    var bytes: Int? = nil
    /// Weight bytes read per generated token (decode): with the measured streaming read rate
    /// this gives the memory-bandwidth bound on tokens/s.
    var weightBytesPerToken: Int? = nil
    /// Model FLOPs per token by the conventional count (training: forward and backward matmuls
    /// with the full attention square), for the model FLOP rate; nil where it means nothing.
    var modelFlopsPerToken: Double? = nil
    /// Allocates inputs, checks the kernel against its reference, and returns the closure to
    /// time. Throws ``BenchFailure`` when the check fails: a benchmark of wrong results is worthless.
    let prepare: () throws -> Prepared

    var flops: Double { gemms.flops + otherFlops }
}

/// A prepared benchmark: the timed body, and what the pre-timing check found.
struct Prepared {
    let run: () -> Void
    /// e.g. "max |Δ| 3.1e-07 vs naive (Double)".
    let check: String
    /// Seconds of the naive reference on the same inputs, when this case times it too.
    var referenceSeconds: Double? = nil
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
}

/// Compares `actual` with `expected`, throwing when any element differs by more than
/// `absolute + relative · |expected|`; returns a short description of the largest difference.
func check(_ actual: [Float], _ expected: [Double], absolute: Double, relative: Double = 1e-5, _ what: String) throws -> String {
    guard actual.count == expected.count else {
        throw BenchFailure(description: "\(what): \(actual.count) values, reference has \(expected.count)")
    }
    if let worst = Closeness.worst(actual, expected, absolute: absolute, relative: relative) {
        throw BenchFailure(description: "\(what): \(worst); refusing to time a wrong result")
    }
    return String(format: "max |Δ| %.1e", Closeness.maxDifference(actual, expected).value)
}
