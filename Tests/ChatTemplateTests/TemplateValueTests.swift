import ChatTemplate
import Foundation
import XCTest

/// ``TemplateValue`` from JSON and literals, and how ``ChatTemplate`` hands messages, tools and
/// variables to a template.
final class TemplateValueTests: XCTestCase {
    func testJSONKeepsKeyOrderAndPythonsNumberKinds() throws {
        let value = try TemplateValue(parsingJSON: #" {"z": 1, "a": [1.0, -2, 3e2, 1E-5, true, null], "m": {"k": "v"}, "z": "last"} "#)
        XCTAssertEqual(value, ["z": "last", "a": [1.0, -2, 300.0, 1e-5, true, nil], "m": ["k": "v"]])
        // A repeated key keeps its first place and its last value, as a Python dict does.
        guard case .object(let members) = value else { return XCTFail("\(value)") }
        XCTAssertEqual(members.map(\.key), ["z", "a", "m"])
        XCTAssertEqual(try TemplateValue(parsingJSON: "9223372036854775808"), .double(9223372036854775808.0))
    }

    func testJSONStringEscapes() throws {
        XCTAssertEqual(try TemplateValue(parsingJSON: #""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude43é""#),
                       .string("a\"\\/\u{8}\u{c}\n\r\té🙃é"))
        // A lone surrogate cannot live in a Swift string: it becomes U+FFFD rather than a crash.
        XCTAssertEqual(try TemplateValue(parsingJSON: #""\ud83d!""#), .string("\u{FFFD}!"))
    }

    func testBadJSONIsAnErrorNamingWhereItIs() {
        let cases = [("{\"a\" 1}", "byte 5: expected ':'"), ("[1, 2", "byte 5: expected ',' or ']'"), ("\"abc", "never closed"),
                     ("{\"a\": tru}", "byte 6"), ("1 2", "byte 2: unexpected text"), ("\"\\x\"", "unknown escape"),
                     (String(repeating: "[", count: 600), "deeper than 512")]
        for (text, message) in cases {
            XCTAssertThrowsError(try TemplateValue(parsingJSON: text), text) { XCTAssertTrue("\($0)".contains(message), "\(text): \($0)") }
        }
    }

    func testDecodableSortsKeysAndEncodableRoundTrips() throws {
        let decoded = try JSONDecoder().decode(TemplateValue.self, from: Data(#"{"b": [1, 2.5, "x", null, false], "a": {}}"#.utf8))
        XCTAssertEqual(decoded, ["a": [:], "b": [1, 2.5, "x", nil, false]])
        let encoded = try JSONEncoder().encode(decoded)
        XCTAssertEqual(try JSONDecoder().decode(TemplateValue.self, from: encoded), decoded)
    }

    func testToolsAndVariablesReachTheTemplate() throws {
        let template = try ChatTemplate("""
            {{ tools is none }}|{% for tool in tools or [] %}{{ tool.function.name }};{% endfor %}|{{ enable_thinking }}|\
            {{ bos_token }}|{{ messages[0].tool_calls[0].function.arguments | tojson }}|{{ messages[1].content[0].text }}|\
            {{ add_generation_prompt }}
            """)
        let messages: [TemplateValue] = [
            ["role": "assistant", "content": nil,
             "tool_calls": [["id": "c1", "type": "function", "function": ["name": "f", "arguments": ["z": 1, "a": "é"]]]]],
            ["role": "user", "content": [["type": "text", "text": "part"]]],
        ]
        let tool: TemplateValue = ["type": "function", "function": ["name": "get_weather", "parameters": ["type": "object"]]]
        XCTAssertEqual(try template.render(messages: messages, addGenerationPrompt: true),
                       #"True||||{"z": 1, "a": "é"}|part|True"#)
        XCTAssertEqual(try template.render(messages: messages, tools: [tool, tool], addGenerationPrompt: false, bosToken: "<s>",
                                           variables: ["enable_thinking": false]),
                       #"False|get_weather;get_weather;|False|<s>|{"z": 1, "a": "é"}|part|False"#)
        // `documents` is None unless given, as transformers passes it.
        let documents = try ChatTemplate("{{ documents is none }}{{ documents | length if documents }}")
        XCTAssertEqual(try documents.render(messages: [], addGenerationPrompt: false), "True")
        XCTAssertEqual(try documents.render(messages: [], addGenerationPrompt: false, variables: ["documents": [["text": "d"]]]), "False1")
        // Variables may replace the special tokens, not the conversation.
        XCTAssertEqual(try ChatTemplate("{{ bos_token }}{{ messages | length }}{{ add_generation_prompt }}")
            .render(messages: [], addGenerationPrompt: true, bosToken: "<s>",
                    variables: ["bos_token": "<B>", "messages": [1, 2], "add_generation_prompt": false]), "<B>0True")
    }

    func testTheStringAPIRendersAsItsMessagesAsValues() throws {
        let template = try ChatTemplate("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{{ tools is defined }}{{ x }}")
        let messages = [ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello")]
        // The string API leaves `tools` undefined, as before.
        XCTAssertEqual(try template.render(messages, addGenerationPrompt: false, variables: ["x": "1"]), "user:Hi;assistant:Hello;False1")
        XCTAssertEqual(try template.render(messages: messages.map(\.templateValue), addGenerationPrompt: false, variables: ["x": "1"]),
                       "user:Hi;assistant:Hello;True1")
    }

    func testRaiseExceptionCarriesTheTemplatesMessage() throws {
        let template = try ChatTemplate("ok\n{% if messages | length == 0 %}{{ raise_exception('No messages: ' ~ 3) }}{% endif %}")
        XCTAssertThrowsError(try template.render(messages: [], addGenerationPrompt: false)) { error in
            let error = error as? TemplateError
            XCTAssertEqual(error?.raisedMessage, "No messages: 3")
            XCTAssertEqual(error?.message, "chat template line 2: the template raised an exception: No messages: 3")
        }
        XCTAssertEqual(try template.render(messages: ["anything"], addGenerationPrompt: false), "ok\n")
    }
}
