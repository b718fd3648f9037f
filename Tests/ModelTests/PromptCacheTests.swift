@testable import Model
import XCTest

/// The choice of slot for a new request: the longest shared prefix, then the least recently used.
final class PromptCacheTests: XCTestCase {
    func testTakesTheFreeSlotSharingTheLongestPrefix() throws {
        var cache = PromptCache(slots: 3)
        let system: [Int32] = [1, 2, 3, 4, 5]
        let first = try XCTUnwrap(cache.take(for: system + [10]))
        XCTAssertEqual(first.shared, 0)
        cache.append(system + [10, 11, 12], to: first.slot)
        cache.release(first.slot)
        let second = try XCTUnwrap(cache.take(for: system + [20]))
        XCTAssertEqual(second.slot, first.slot, "the slot holding the system prompt")
        XCTAssertEqual(second.shared, 5)
        cache.keep(second.shared, in: second.slot)
        XCTAssertEqual(cache.tokens[second.slot], system)
        // The same prompt again: all but its last token (which must run to give logits).
        cache.append([20], to: second.slot)
        cache.release(second.slot)
        XCTAssertEqual(cache.take(for: system + [20])?.shared, 5)
    }

    func testAmongEqualsTheLeastRecentlyUsedSoRecentPrefixesStay() throws {
        var cache = PromptCache(slots: 3)
        var taken: [Int] = []
        for prompt: [Int32] in [[1, 2], [3, 4], [5, 6]] {
            let slot = try XCTUnwrap(cache.take(for: prompt)).slot
            cache.append(prompt, to: slot)
            taken.append(slot)
        }
        XCTAssertEqual(Set(taken).count, 3)
        XCTAssertNil(cache.take(for: [9]), "no slot free")
        for slot in taken { cache.release(slot) }
        XCTAssertEqual(cache.take(for: [9, 9])?.slot, taken[0], "nothing shared: the oldest")
        cache.releaseEmpty(taken[1])
        XCTAssertEqual(cache.tokens[taken[1]], [])
        XCTAssertEqual(cache.take(for: [5, 6, 7])?.shared, 2)
    }
}
