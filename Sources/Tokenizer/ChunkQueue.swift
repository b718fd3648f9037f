import Foundation

/// Runs `produce` for chunk indices `0..<count` on `workers` threads, each thread taking the
/// next unclaimed chunk (chunks differ in cost, so a fixed split would leave a thread idle), and
/// returns the results in chunk order. `produce` gets the worker's number, for per-thread state:
/// worker `w` is one thread at a time, so state indexed by it is never shared.
func mapChunksConcurrently<Result>(_ count: Int, workers: Int, _ produce: (_ worker: Int, _ index: Int) -> Result,
                                   completed: ((_ index: Int) -> Void)? = nil) -> [Result] {
    let queue = ChunkQueue<Result>(count: count)
    withoutActuallyEscaping(produce) { produce in
        withoutActuallyEscaping(completed ?? { _ in }) { completed in
            let work = ChunkWork(produce: produce, completed: completed)
            DispatchQueue.concurrentPerform(iterations: max(1, min(workers, count))) { worker in
                while let index = queue.claim() {
                    queue.store(work.produce(worker, index), at: index)
                    work.completed(index)
                }
            }
        }
    }
    return queue.results()
}

/// The closures of one ``mapChunksConcurrently(_:workers:_:completed:)`` call, shared by its
/// threads: `produce` is called with distinct chunk indices and per-worker state only, and
/// `completed` by the callers' own contract is safe to call concurrently (it takes a lock).
private struct ChunkWork<Result>: @unchecked Sendable {
    let produce: (Int, Int) -> Result
    let completed: (Int) -> Void
}

/// The next unclaimed chunk and the results so far, under one lock.
private final class ChunkQueue<Result>: @unchecked Sendable {
    // Safe: `next` and `slots` are only touched while holding `lock`.
    private let lock = NSLock()
    private var next = 0
    private var slots: [Result?]

    init(count: Int) { slots = [Result?](repeating: nil, count: count) }

    func claim() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < slots.count else { return nil }
        next += 1
        return next - 1
    }

    func store(_ result: Result, at index: Int) {
        lock.lock()
        slots[index] = result
        lock.unlock()
    }

    func results() -> [Result] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0! }
    }
}
