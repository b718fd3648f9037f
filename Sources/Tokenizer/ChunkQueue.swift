import Foundation

/// Runs `produce` for chunk indices `0..<count` on `workers` threads, each thread taking the
/// next unclaimed chunk (chunks differ in cost, so a fixed split would leave a thread idle), and
/// returns the results in chunk order. `produce` gets the worker's number, for per-thread state.
func mapChunksConcurrently<Result>(_ count: Int, workers: Int, _ produce: (_ worker: Int, _ index: Int) -> Result,
                                   completed: ((_ index: Int) -> Void)? = nil) -> [Result] {
    var results = [Result?](repeating: nil, count: count)
    let lock = NSLock()
    var next = 0
    DispatchQueue.concurrentPerform(iterations: max(1, min(workers, count))) { worker in
        while true {
            lock.lock()
            let index = next
            next += 1
            lock.unlock()
            guard index < count else { return }
            let result = produce(worker, index)
            lock.lock()
            results[index] = result
            lock.unlock()
            completed?(index)
        }
    }
    return results.map { $0! }
}
