import ChatTemplate
import Foundation
import Model
import TestSupport
import XCTest

/// A conversation's second turn reuses the cached first turn; its answer must be the one a
/// fresh session computes from the whole conversation (greedy, on the tiny Hugging Face Llama).
final class ChatSessionTests: XCTestCase {
    func testCachedTurnsAnswerAsAFreshSessionDoes() throws {
        let pretrained = try PretrainedModel.load(try Fixtures.requireSharedData("hf-llama-tiny"))
        let options = GenerationOptions(maxTokens: 12, temperature: 0)
        let chat = try ChatSession(pretrained, system: "Be brief.")
        let first = try chat.respond(to: "Hello there", options: options) { _ in true }
        let second = try chat.respond(to: "And then?", options: options) { _ in true }
        XCTAssertEqual(first.reusedTokens, 0)
        XCTAssertGreaterThan(second.reusedTokens, first.promptTokens - 1, "the second turn reuses the first turn's tokens")
        XCTAssertLessThan(second.promptTokens - second.reusedTokens, second.promptTokens / 2)

        // The same conversation prefilled from nothing.
        let replay = try ChatSession(pretrained)
        var streamed = ""
        let direct = try replay.answer(Array(chat.messages.prefix(4)), options: options) {
            streamed += $0
            return true
        }
        XCTAssertEqual(direct.reusedTokens, 0)
        XCTAssertEqual(direct.text, second.text)
        XCTAssertEqual(streamed, second.text, "the streamed pieces make up the answer")
    }
}
