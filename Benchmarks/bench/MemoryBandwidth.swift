import Kernels

/// The machine's streaming read rate: every thread sums its share of a buffer, sixteen lanes at
/// a time, over and over. Decode speed is compared with the bound it implies: weight bytes read
/// per token ÷ the rate of streaming a buffer of that same size. (On a CPU whose last-level
/// cache holds the weights, that is the cache's rate, well above DRAM's; a DRAM-sized buffer
/// would understate the bound.)
enum MemoryBandwidth {
    /// Bytes per second, median over repeated passes of a buffer of `bytes` bytes.
    static func readBytesPerSecond(bytes: Int, plan: MeasurementPlan) -> Double {
        let threads = Threading.count
        let count = (bytes / 4 + 16 * threads - 1) / (16 * threads) * (16 * threads)  // floats
        let buffer = TensorBuffer(count: count)
        for i in stride(from: 0, to: count, by: 1024) { buffer.pointer[i] = 1 }  // touch every page
        let sink = TensorBuffer(count: threads)  // one slot per task, so each task writes its own
        let chunk = count / threads
        let timing = plan.measure {
            Threading.parallelRanges(threads, costPerItem: chunk) { tasks in
                for task in tasks {
                    let base = buffer.pointer + task * chunk
                    var lanes = SIMD16<Float>()
                    var i = 0
                    while i + 16 <= chunk {
                        lanes += UnsafeRawPointer(base + i).loadUnaligned(as: SIMD16<Float>.self)
                        i += 16
                    }
                    sink.pointer[task] = lanes.sum()
                }
            }
        }
        precondition(!UnsafeBufferPointer(start: sink.pointer, count: threads).contains(.nan))
        return Double(count * 4) / timing.median
    }
}
