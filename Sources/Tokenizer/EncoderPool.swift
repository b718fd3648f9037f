import Foundation

/// Encoders lent to callers one at a time, so that one ``Tokenizer`` (or
/// ``ScoredPieceTokenizer``) can encode from several threads at once while each thread keeps a
/// warm cache between calls.
final class EncoderPool<Item: AnyObject>: @unchecked Sendable {
    // Safe because `idle` is only touched under `lock`, and an encoder taken out of it belongs
    // to the one caller that took it until that caller puts it back.
    private let lock = NSLock()
    private var idle: [Item] = []

    /// Runs `body` with an encoder no other thread is using: an idle one, else one from `make`.
    func withEncoder<Result>(make: () -> Item, _ body: (Item) throws -> Result) rethrows -> Result {
        lock.lock()
        let reused = idle.popLast()
        lock.unlock()
        let encoder = reused ?? make()
        defer {
            lock.lock()
            idle.append(encoder)
            lock.unlock()
        }
        return try body(encoder)
    }
}
