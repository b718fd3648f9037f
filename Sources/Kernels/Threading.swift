import COpenBLAS
import Dispatch
import Foundation
import Synchronization

/// The one knob for parallelism: the thread count used by OpenBLAS's GEMMs and by our own
/// row-parallel loops (norms, softmax, RoPE, activations).
///
/// The default is every core, or the environment variable `LM_THREADS` when it holds a positive
/// integer. Setting ``count`` changes both OpenBLAS and our loops at once.
public enum Threading {
    private static let current: Atomic<Int> = {
        let initial = environmentThreadCount() ?? coreCount
        openblas_set_num_threads(blasThreads(initial))
        return Atomic(initial)
    }()

    /// The most threads a program may ask for: far beyond any machine this runs on, and within
    /// what OpenBLAS's `Int32` count and our pool can take.
    public static let maximumCount = 1024

    /// Threads used by OpenBLAS and by the row-parallel loops, in `1...maximumCount` (a value
    /// outside is a programming error: command-line and environment input is checked first).
    public static var count: Int {
        get { current.load(ordering: .relaxed) }
        set {
            precondition(newValue >= 1 && newValue <= maximumCount, "Threading.count must be in 1...\(maximumCount), got \(newValue)")
            current.store(newValue, ordering: .relaxed)
            openblas_set_num_threads(blasThreads(newValue))
        }
    }

    /// The cores this process may run on.
    public static let coreCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// OpenBLAS's share of `count` threads: at most one per core. Each OpenBLAS worker reserves
    /// its own large buffer (128 MiB of address space here); more workers than cores compute
    /// nothing faster, and under an address-space limit (`ulimit -v`) the workers whose buffer is
    /// refused retry for ever, so `--threads 64` would hang instead of running.
    static func blasThreads(_ count: Int) -> Int32 { Int32(min(count, coreCount)) }

    /// `LM_THREADS` as an integer in `1...maximumCount`, or nil when unset or anything else.
    public static func environmentThreadCount() -> Int? {
        guard let text = ProcessInfo.processInfo.environment["LM_THREADS"],
              let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 1, value <= maximumCount else { return nil }
        return value
    }

    /// Make sure OpenBLAS has been told the thread count before the first GEMM.
    @inline(__always) static func ensureConfigured() { _ = count }

    /// Runs `body` with OpenBLAS limited to one thread, so that our own threads can each call
    /// small GEMMs side by side (one owner of threads per loop) instead of every tiny GEMM
    /// waking OpenBLAS's pool.
    public static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        let threads = count
        guard threads > 1 else { return try body() }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(blasThreads(threads)) }
        return try body()
    }

    /// Runs `body` over `0..<count` split into contiguous chunks, one task per thread, when the
    /// total work (`count × costPerItem`, in rough scalar operations) is worth a thread hop.
    /// The contract is ``DisjointRangesBody``'s: each call owns the rows of its range.
    public static func parallelRanges(_ count: Int, costPerItem: Int, _ body: (Range<Int>) -> Void) {
        let threads = min(Threading.count, count)
        // Below ~64k scalar operations a dispatch costs more than it saves.
        if threads <= 1 || count * costPerItem < 65_536 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            // A busy pool means a nested loop or another thread's loop: this one runs alone.
            if !WorkerPool.shared.run(tasks: threads, count: count, DisjointRangesBody(body)) { body(0..<count) }
        }
    }
}

/// The body of a row-parallel loop: called at the same time from several threads, each call
/// with a range of rows that no other call gets. It must write only memory that belongs to the
/// rows of its range (its rows of an output, its columns of a weight gradient), and may read
/// anything no call writes.
///
/// The closures capture raw pointers into caller-owned buffers, which Swift cannot prove
/// disjoint; this type is where that promise is made, once, instead of at every loop. Values
/// captured by the closure (as opposed to pointed-to memory) are never mutated by the loops in
/// this package.
public struct DisjointRangesBody: @unchecked Sendable {
    let run: (Range<Int>) -> Void

    init(_ run: @escaping (Range<Int>) -> Void) { self.run = run }
}
