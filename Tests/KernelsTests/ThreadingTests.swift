import Foundation
import Kernels
import TestSupport
import XCTest

final class ThreadingTests: XCTestCase {
    func testLMThreadsIsReadAsAPositiveInteger() {
        let saved = ProcessInfo.processInfo.environment["LM_THREADS"]
        defer { if let saved { setenv("LM_THREADS", saved, 1) } else { unsetenv("LM_THREADS") } }
        setenv("LM_THREADS", "3", 1)
        XCTAssertEqual(Threading.environmentThreadCount(), 3)
        for bad in ["0", "-2", "many", ""] {
            setenv("LM_THREADS", bad, 1)
            XCTAssertNil(Threading.environmentThreadCount(), "LM_THREADS=\(bad) is ignored")
        }
    }

    /// Results do not depend on the thread count (each row is written by one thread only).
    func testKernelsGiveTheSameResultWithOneThreadOrSeveral() {
        let original = Threading.count
        defer { Threading.count = original }
        var rng = SeededGenerator(seed: 5)
        let (rows, dim) = (300, 256)
        let x = rng.uniform(rows * dim, scale: 3), w = rng.uniform(dim)
        Threading.count = 1
        let one = (Run.rmsNorm(x, weight: w, rows: rows, dim: dim).y, Run.softmax(x, rows: rows, cols: dim))
        Threading.count = 3
        let three = (Run.rmsNorm(x, weight: w, rows: rows, dim: dim).y, Run.softmax(x, rows: rows, cols: dim))
        XCTAssertEqual(one.0, three.0)
        XCTAssertEqual(one.1, three.1)
    }

    /// The worker pool under stress: many small loops in a row, loops started from several
    /// threads at once (one gets the pool, the others run alone), loops nested inside a loop, and
    /// loops of different task counts in turn. Every index must be visited exactly once each time.
    func testParallelRangesVisitsEveryIndexOnceFromConcurrentAndNestedCallers() {
        let original = Threading.count
        defer { Threading.count = original }
        Threading.count = 3
        let count = 1000
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            let visits = UnsafeMutableBufferPointer<Int32>.allocate(capacity: count)
            defer { visits.deallocate() }
            for round in 0..<200 {
                visits.initialize(repeating: 0)
                // Every third loop covers two indices: two tasks where the others have three, so
                // that a worker outside a loop's task count meets the next loop promptly.
                let size = round % 3 == 2 ? 2 : count
                Threading.parallelRanges(size, costPerItem: 100_000) { range in
                    for i in range {
                        visits[i] += 1
                        if i == range.lowerBound && round % 50 == 0 {
                            // A nested loop: runs on this thread, must still see its whole range.
                            var inner = 0
                            Threading.parallelRanges(100, costPerItem: 10_000) { inner += $0.count }
                            precondition(inner == 100, "nested loop saw \(inner) of 100 indices")
                        }
                    }
                }
                let wrong = (0..<count).first { visits[$0] != ($0 < size ? 1 : 0) }
                XCTAssertNil(wrong, "caller \(caller), round \(round): index \(wrong ?? -1) visited \(wrong.map { visits[$0] } ?? 0) times")
            }
        }
    }
}
