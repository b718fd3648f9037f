import Foundation
import Model
import XCTest

/// The streamed reading of a tool-offering answer: however the answer is cut into pieces, the
/// deltas add up to what the whole answer parses to, and a call goes out before it ends.
final class ToolCallStreamTests: XCTestCase {
    let offered = [ToolFunction(name: "get_weather"), ToolFunction(name: "add")]

    /// The answer's deltas when it arrives in pieces cut at `cuts` (byte offsets on character
    /// boundaries), with neighbouring content and argument pieces joined.
    func streamed(_ text: String, cuts: [Int], parallel: Bool = true) -> (deltas: [ToolCallStream.Delta], complete: Bool) {
        var stream = ToolCallStream(offered: offered, parallel: parallel)
        var deltas: [ToolCallStream.Delta] = []
        let bytes = Array(text.utf8)
        var start = 0
        for end in cuts.sorted() + [bytes.count] where end > start {
            deltas += stream.append(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end
        }
        deltas += stream.finish()
        var joined: [ToolCallStream.Delta] = []
        for delta in deltas {
            switch (joined.last, delta) {
            case (.content(let a)?, .content(let b)): joined[joined.count - 1] = .content(a + b)
            case (.arguments(let i, let a)?, .arguments(let j, let b)) where i == j: joined[joined.count - 1] = .arguments(index: i, a + b)
            default: joined.append(delta)
            }
        }
        return (joined, stream.callsComplete)
    }

    /// Cut points on character boundaries.
    func randomCuts(_ text: String, _ random: inout SystemRandomNumberGenerator) -> [Int] {
        let boundaries = text.indices.map { text.utf8.distance(from: text.startIndex, to: $0) }
        return (0..<Int.random(in: 0...12, using: &random)).map { _ in boundaries.randomElement(using: &random)! }
    }

    func testPiecesAddUpToTheWholeAnswersCalls() {
        let answers: [(String, [ToolCallStream.Delta])] = [
            ("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"note\": \"a < b }\"}}\n</tool_call>",
             [.content("Let me check.\n"), .call(index: 0, name: "get_weather"), .arguments(index: 0, #"{"city": "Paris", "note": "a < b }"}"#)]),
            ("<tool_call>{\"name\": \"add\", \"arguments\": {\"a\": [1, {\"b\": 2}]}}</tool_call>\n<tool_call>{\"arguments\": {\"city\": \"Rome\"}, \"name\": \"get_weather\"}</tool_call>",
             [.call(index: 0, name: "add"), .arguments(index: 0, #"{"a": [1, {"b": 2}]}"#), .content("\n"),
              .call(index: 1, name: "get_weather"), .arguments(index: 1, #"{"city": "Rome"}"#)]),
            ("<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}; {\"name\": \"add\"}",
             [.call(index: 0, name: "get_weather"), .arguments(index: 0, #"{"city": "Oslo"}"#), .call(index: 1, name: "add"), .arguments(index: 1, "{}")]),
            ("  {\"name\": \"add\", \"arguments\": \"{\\\"a\\\": 1}\"}", [.call(index: 0, name: "add"), .arguments(index: 0, #"{"a": 1}"#)]),
            // Not calls: content, whole.
            ("<tool_call>{\"name\": \"launch\", \"arguments\": {}}</tool_call> and é", [.content("<tool_call>{\"name\": \"launch\", \"arguments\": {}}</tool_call> and é")]),
            ("{\"answer\": 42}", [.content("{\"answer\": 42}")]),
            ("{\"name\": \"add\", \"parameters\": 3}", [.content("{\"name\": \"add\", \"parameters\": 3}")]),
            ("x < y, <tool <b>bold</b> <tool_cal", [.content("x < y, <tool <b>bold</b> <tool_cal")]),
            ("Plain answer.", [.content("Plain answer.")]),
        ]
        var random = SystemRandomNumberGenerator()
        for (text, expected) in answers {
            for round in 0..<60 {
                let cuts = round == 0 ? [] : round == 1 ? Array(0...text.utf8.count).filter { text.utf8.index(text.utf8.startIndex, offsetBy: $0).samePosition(in: text.unicodeScalars) != nil } : randomCuts(text, &random)
                let (deltas, complete) = streamed(text, cuts: cuts)
                XCTAssertEqual(deltas, expected, "\(text) cut at \(cuts)")
                XCTAssertTrue(complete, text)
            }
            // The streamed calls are the whole answer's calls.
            let calls = ToolCalls.parse(text, offered: offered).calls
            let streamedCalls = expected.compactMap { delta -> String? in if case .call(_, let name) = delta { name } else { nil } }
            XCTAssertEqual(calls.map(\.name), streamedCalls, text)
            let streamedArguments = expected.compactMap { delta -> String? in if case .arguments(_, let text) = delta { text } else { nil } }
            XCTAssertEqual(calls.map(\.arguments), streamedArguments, text)
        }
    }

    func testCallGoesOutBeforeTheAnswerEnds() {
        var stream = ToolCallStream(offered: offered, parallel: true)
        XCTAssertEqual(stream.append("<tool_call>\n{\"name\": \"get_wea"), [])
        XCTAssertEqual(stream.append("ther\", \"arguments\": {\"ci"), [.call(index: 0, name: "get_weather"), .arguments(index: 0, "{\"ci")])
        XCTAssertEqual(stream.append("ty\": \"Paris\"}}"), [.arguments(index: 0, "ty\": \"Paris\"}")])
        XCTAssertEqual(stream.append("\n</tool_call>"), [])
        XCTAssertEqual(stream.finish(), [])
        XCTAssertTrue(stream.callsComplete)
    }

    func testOnlyTheFirstCallWithoutParallelCalls() {
        let text = "<tool_call>{\"name\": \"add\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>"
        XCTAssertEqual(streamed(text, cuts: [], parallel: false).deltas, [.call(index: 0, name: "add"), .arguments(index: 0, "{}")])
    }

    func testACallCutOffStaysAsFarAsItWasWritten() {
        let (deltas, complete) = streamed("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Pa", cuts: [30])
        XCTAssertEqual(deltas, [.call(index: 0, name: "get_weather"), .arguments(index: 0, "{\"city\": \"Pa")])
        XCTAssertFalse(complete)
        // A block that never names a function is content.
        XCTAssertEqual(streamed("<tool_call>{\"arguments\": {\"a\": 1", cuts: [5]).deltas, [.content("<tool_call>{\"arguments\": {\"a\": 1")])
    }
}
