import CVectorKernels
import Foundation
import Synchronization

/// The threads behind ``Threading/parallelRanges(_:costPerItem:_:)``: workers that stay awake,
/// polling, for a short while after each task, so that the many small parallel loops of a
/// decode step (a few microseconds of work each) do not pay a thread wake-up each, which costs
/// more than the work (the figures are in the README, "Decode speed").
///
/// After ``spinLimit`` polls without work a worker sleeps on a condition variable, so that idle
/// workers do not take cores from OpenBLAS's own threads during long GEMMs.
///
/// One loop at a time: a caller that finds the pool busy (a nested loop, or a second thread
/// running its own loop) runs its whole range itself.
final class WorkerPool: @unchecked Sendable {
    // @unchecked: `job` and `workers` are written only by the thread that holds `busy`. A loop is
    // published by a release store of `ticket`; a worker reads `job` only after an acquire load
    // of that ticket, and only when the ticket's task count includes it; the poster changes
    // `job` again only after every such worker has acknowledged. Workers outside the count never
    // touch `job` (the poster does not wait for them).
    static let shared = WorkerPool()

    /// Polls (each one CPU `pause`, tens of cycles) before a worker goes to sleep: about
    /// 50–100 µs, longer than the serial gaps between a decode step's loops, far shorter than a
    /// training GEMM.
    static let spinLimit = 4096

    private let busy = Atomic<Bool>(false)
    /// Loop number << 16 | its task count: one atomic value, so that a worker always learns a
    /// loop's task count together with the loop it belongs to.
    private let ticket = Atomic<Int>(0)
    static let taskBits = 16
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
            // The worker starts from the current ticket, so it takes the job posted below even
            // when its thread first runs after the post.
            let index = workers + 1, start = ticket.load(ordering: .acquiring)
            let thread = Thread { [self] in workerLoop(index: index, seen: start) }
            thread.stackSize = 1 << 20
            thread.start()
            workers += 1
        }
        let chunk = (count + tasks - 1) / tasks
        job = (body, count, chunk, tasks)
        pending.store(tasks - 1, ordering: .relaxed)
        precondition(tasks < 1 << Self.taskBits, "WorkerPool: \(tasks) tasks")
        let next = ((ticket.load(ordering: .relaxed) >> Self.taskBits) + 1) << Self.taskBits | tasks
        sleepLock.lock()
        ticket.store(next, ordering: .releasing)
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
            var current = ticket.load(ordering: .acquiring)
            while current == seen {
                if polls < Self.spinLimit {
                    polls += 1
                    lm_cpu_relax()
                } else {
                    sleepLock.lock()
                    while ticket.load(ordering: .acquiring) == seen { sleepLock.wait() }
                    sleepLock.unlock()
                }
                current = ticket.load(ordering: .acquiring)
            }
            seen = current
            // Workers beyond this loop's task count have nothing to do and nothing to report.
            guard index < current & ((1 << Self.taskBits) - 1) else { continue }
            runTask(index)
            pending.subtract(1, ordering: .releasing)
        }
    }
}
