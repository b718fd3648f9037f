import COpenBLAS
import Dispatch
import Foundation

/// The one knob for parallelism: the thread count used by OpenBLAS's GEMMs and by our own
/// row-parallel loops (norms, softmax, RoPE, activations).
///
/// The default is every core, or the environment variable `LM_THREADS` when it holds a positive
/// integer. Setting ``count`` changes both OpenBLAS and our loops at once.
public enum Threading {
    nonisolated(unsafe) private static var current: Int = {
        let initial = environmentThreadCount() ?? ProcessInfo.processInfo.activeProcessorCount
        openblas_set_num_threads(Int32(initial))
        return initial
    }()

    /// Threads used by OpenBLAS and by the row-parallel loops (≥ 1).
    public static var count: Int {
        get { current }
        set {
            precondition(newValue >= 1, "Threading.count must be at least 1, got \(newValue)")
            current = newValue
            openblas_set_num_threads(Int32(newValue))
        }
    }

    /// `LM_THREADS` as a positive integer, or nil when unset or not a positive integer.
    public static func environmentThreadCount() -> Int? {
        guard let text = ProcessInfo.processInfo.environment["LM_THREADS"],
              let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 1 else { return nil }
        return value
    }

    /// Make sure OpenBLAS has been told the thread count before the first GEMM.
    @inline(__always) static func ensureConfigured() { _ = current }

    /// Runs `body` with OpenBLAS limited to one thread, so that our own threads can each call
    /// small GEMMs side by side (one owner of threads per loop) instead of every tiny GEMM
    /// waking OpenBLAS's pool.
    public static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        guard current > 1 else { return try body() }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(current)) }
        return try body()
    }

    /// Runs `body` over `0..<count` split into contiguous chunks, one task per thread, when the
    /// total work (`count × costPerItem`, in rough scalar operations) is worth a thread hop.
    /// Chunks never overlap, so bodies that write only their own rows need no synchronisation.
    @inlinable
    public static func parallelRanges(_ count: Int, costPerItem: Int, _ body: (Range<Int>) -> Void) {
        let threads = min(Threading.count, count)
        // Below ~64k scalar operations a dispatch costs more than it saves.
        if threads <= 1 || count * costPerItem < 65_536 {
            body(0..<count)
            return
        }
        let chunk = (count + threads - 1) / threads
        DispatchQueue.concurrentPerform(iterations: threads) { task in
            let start = task * chunk
            let end = min(count, start + chunk)
            if start < end { body(start..<end) }
        }
    }
}
