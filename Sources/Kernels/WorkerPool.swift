import CVectorKernels
import Foundation
import Synchronization

/// The threads behind ``Threading/parallelRanges(_:costPerItem:_:)``: workers that stay awake,
/// polling, for a short while after each task, so that the many small parallel loops of a
/// decode step (a few microseconds of work each) do not pay a thread wake-up each (tens of
/// microseconds on this class of machine, measured: decode at 2 threads went from 254 to
/// about 400 tokens/s when the wake-ups went away).
///
/// After ``spinLimit`` polls without work a worker sleeps on a condition variable, so that idle
/// workers do not take cores from OpenBLAS's own threads during long GEMMs.
///
/// One loop at a time: a caller that finds the pool busy (a nested loop, or a second thread
/// running its own loop) runs its whole range itself.
final class WorkerPool: @unchecked Sendable {
    // @unchecked: `job` and `workers` are written only by the thread that holds `busy`, before it
    // publishes them with a release increment of `generation` (workers read them after an
    // acquire load of it), and read by it again only after every worker has acknowledged.
    static let shared = WorkerPool()

    /// Polls (each one CPU `pause`, tens of cycles) before a worker goes to sleep: about
    /// 50–100 µs, longer than the serial gaps between a decode step's loops, far shorter than a
    /// training GEMM.
    static let spinLimit = 4096

    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepLock = NSCondition()
    private var workers = 0
    private var job: (body: DisjointRangesBody, count: Int, chunk: Int, tasks: Int)?

    /// Runs `body` over `0..<count` in `tasks` contiguous chunks, on the calling thread and
    /// `tasks - 1` workers; returns false (having run nothing) when the pool is busy.
    func run(tasks: Int, count: Int, _ body: DisjointRangesBody) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        while workers < tasks - 1 {
            // The worker starts from the current generation, so it takes the job posted below
            // even when its thread first runs after the post.
            let index = workers + 1, start = generation.load(ordering: .acquiring)
            let thread = Thread { [self] in workerLoop(index: index, seen: start) }
            thread.stackSize = 1 << 20
            thread.start()
            workers += 1
        }
        let chunk = (count + tasks - 1) / tasks
        job = (body, count, chunk, tasks)
        pending.store(tasks - 1, ordering: .relaxed)
        sleepLock.lock()
        generation.add(1, ordering: .releasing)
        sleepLock.broadcast()
        sleepLock.unlock()
        runTask(0)
        while pending.load(ordering: .acquiring) > 0 { lm_cpu_relax() }
        job = nil
        return true
    }

    private func runTask(_ index: Int) {
        guard let job else { return }
        let start = index * job.chunk, end = min(job.count, start + job.chunk)
        if start < end { job.body.run(start..<end) }
    }

    private func workerLoop(index: Int, seen start: Int) {
        var seen = start
        while true {
            var polls = 0
            while generation.load(ordering: .acquiring) == seen {
                if polls < Self.spinLimit {
                    polls += 1
                    lm_cpu_relax()
                } else {
                    sleepLock.lock()
                    while generation.load(ordering: .acquiring) == seen { sleepLock.wait() }
                    sleepLock.unlock()
                }
            }
            seen = generation.load(ordering: .acquiring)
            // Workers beyond this loop's task count have nothing to do and nothing to report.
            guard let tasks = job?.tasks, index < tasks else { continue }
            runTask(index)
            pending.subtract(1, ordering: .releasing)
        }
    }
}
