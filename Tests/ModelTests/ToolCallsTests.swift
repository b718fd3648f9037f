import Foundation
import Model
import XCTest

/// Tool calls read from each family's format, malformed ones left as text, and the schema of a
/// forced call.
final class ToolCallsTests: XCTestCase {
    let offered = [ToolFunction(name: "get_weather", parameters: try! JSONValue(parsing: Data(#"{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}"#.utf8))),
                   ToolFunction(name: "add")]

    func testFormats() {
        let hermes = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
        // The arguments are the model's own text: what a stream sends piece by piece adds up to it.
        XCTAssertEqual(ToolCalls.parse(hermes, offered: offered).calls, [ToolCall(name: "get_weather", arguments: #"{"city": "Paris"}"#)])
        XCTAssertEqual(ToolCalls.parse(hermes, offered: offered).content, "Let me check.")
        let two = "<tool_call>{\"name\": \"add\", \"arguments\": {\"a\": 1}}</tool_call>\n<tool_call>{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Rome\\\"}\"}</tool_call>"
        XCTAssertEqual(ToolCalls.parse(two, offered: offered).calls.map(\.name), ["add", "get_weather"])
        XCTAssertEqual(ToolCalls.parse(two, offered: offered).calls.last?.arguments, #"{"city": "Rome"}"#, "arguments given as a JSON string stay that string")
        let llama = "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}"
        XCTAssertEqual(ToolCalls.parse(llama, offered: offered).calls, [ToolCall(name: "get_weather", arguments: #"{"city": "Oslo"}"#)])
        let several = #"{"name": "add", "parameters": {"a": 2}}; {"name": "add", "parameters": {"a": 3}}"#
        XCTAssertEqual(ToolCalls.parse(several, offered: offered).calls.count, 2)
    }

    func testMalformedCallsStayText() {
        for text in ["<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": </tool_call>",  // not JSON
                     "<tool_call>{\"name\": \"launch\", \"arguments\": {}}</tool_call>",  // not offered
                     "<tool_call>{\"arguments\": {}}</tool_call>",  // no name
                     "<tool_call>{\"name\": \"add\", \"arguments\": {}}",  // not closed
                     "{\"name\": \"add\", \"parameters\": 3}",  // arguments not an object
                     "The weather in Paris is mild."] {
            let parsed = ToolCalls.parse(text, offered: offered)
            XCTAssertEqual(parsed.calls, [], text)
            XCTAssertEqual(parsed.content, text)
        }
    }

    func testForcedCallSchemaAcceptsExactlyTheOfferedCalls() throws {
        let schema = try ToolCalls.constraint(for: offered)
        func accepts(_ text: String) -> Bool {
            var recognizer = JSONRecognizer(schema)
            return recognizer.read(Array(text.utf8)) && recognizer.isComplete
        }
        XCTAssertTrue(accepts(#"{"name":"get_weather","arguments":{"city":"Paris"}}"#))
        XCTAssertTrue(accepts(#"{"arguments":{"x":[1]},"name":"add"}"#), "add takes any object")
        XCTAssertFalse(accepts(#"{"name":"get_weather","arguments":{}}"#), "city is required")
        XCTAssertFalse(accepts(#"{"name":"launch","arguments":{}}"#))
        XCTAssertFalse(accepts(#"{"name":"add"}"#))
        XCTAssertTrue(ToolCalls.genericPrompt(for: offered).contains("<tool_call>"))
    }
}
