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
}
