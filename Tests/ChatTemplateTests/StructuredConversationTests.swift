import ChatTemplate
import Foundation
import XCTest

/// Qwen 3's and Gemma 3's own chat templates over 360 random structured conversations, against
/// the prompts (or exceptions) Python's jinja2 renders from them.
///
/// `structured_conversations.json` was written by a plain Python script (no installs) with
/// jinja2 3.1.6 configured as transformers' `apply_chat_template` configures it:
/// `ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
/// extensions=[jinja2.ext.loopcontrols])`, `tojson` replaced by
/// `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`,
/// `raise_exception` raising `TemplateError(message)`, and each case rendered as
/// `template.render(messages=…, tools=tools or None, add_generation_prompt=…, **variables)`.
/// Its `random.Random(2024)` drew, every third case for Gemma 3 and the rest for Qwen 3: an
/// optional system message; one to four user turns, each followed by zero to two assistant turns
/// with one to three `tool_calls` (OpenAI shape, sometimes the bare `{"name", "arguments"}`;
/// arguments an object, a JSON string or plain text) and their `tool` results (`tool_call_id`,
/// `name`, content text, JSON or a list of parts); `reasoning_content` (text, None or absent);
/// assistant text with `<think>…</think>` inside; content as a string, a list of
/// `{"type": "text"}` parts or None; text drawn from fragments that trip naive interpreters
/// (CR LF, U+001F, U+00A0, U+2003, a combining accent, quotes, braces, special tokens, emoji);
/// one to three tools with JSON-schema parameters (enums, defaults, floats such as 1e16, 1e-05,
/// -0.0, 2**53+1); `enable_thinking` true, false or absent; sometimes an unused extra variable;
/// `add_generation_prompt` both ways; a few conversations shuffled out of order. The file holds
/// `{template, messages, tools?, variables, add_generation_prompt, expected, error,
/// error_type?}` per case, keys in the order Python wrote them.
final class StructuredConversationTests: XCTestCase {
    private static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    static func template(_ name: String) throws -> ChatTemplate {
        try ChatTemplate(String(contentsOf: directory.appendingPathComponent("\(name)_chat_template.jinja"), encoding: .utf8))
    }

    /// Where two texts first differ, with a little context, for a failure message.
    static func difference(_ got: String, _ expected: String) -> String {
        let a = Array(got.unicodeScalars), b = Array(expected.unicodeScalars)
        let index = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        let context = { (items: [Unicode.Scalar]) in
            String(String.UnicodeScalarView(items[max(0, index - 30)..<min(items.count, index + 30)])).debugDescription
        }
        return "first difference at code point \(index) of \(b.count): got \(context(a)), jinja2 wrote \(context(b))"
    }

    func testStructuredConversationsRenderAsJinja2Does() throws {
        let url = Self.directory.appendingPathComponent("structured_conversations.json")
        guard case .array(let cases) = try TemplateValue(parsingJSON: String(contentsOf: url, encoding: .utf8)) else {
            return XCTFail("\(url.path): expected a list of cases")
        }
        XCTAssertEqual(cases.count, 360)
        let templates = ["qwen3": try Self.template("qwen3"), "gemma3": try Self.template("gemma3")]
        var rendered = 0, raised = 0, otherErrors = 0
        for (index, item) in cases.enumerated() {
            guard case .string(let name) = item["template"], let template = templates[name],
                  case .array(let messages) = item["messages"], case .bool(let generationPrompt) = item["add_generation_prompt"],
                  case .object(let variables) = item["variables"] else {
                return XCTFail("case \(index) is not shaped as the generator writes cases")
            }
            var tools: [TemplateValue]?
            if case .array(let given) = item["tools"] { tools = given }
            let render = {
                try template.render(messages: messages, tools: tools, addGenerationPrompt: generationPrompt,
                                    variables: Dictionary(variables.map { ($0.key, $0.value) }) { $1 })
            }
            if case .string(let expected) = item["expected"] {
                do {
                    let prompt = try render()
                    if prompt != expected { XCTFail("case \(index) (\(name)): \(Self.difference(prompt, expected))") }
                    rendered += 1
                } catch {
                    XCTFail("case \(index) (\(name)): \(error)")
                }
            } else if case .string(let message) = item["error"] {
                do {
                    _ = try render()
                    XCTFail("case \(index) (\(name)) raises in jinja2: \(message)")
                } catch let error as TemplateError {
                    if item["error_type"] == "TemplateError" {
                        // raise_exception: the template's own message, exactly.
                        XCTAssertEqual(error.raisedMessage, message, "case \(index) (\(name))")
                        raised += 1
                    } else {
                        XCTAssertNil(error.raisedMessage, "case \(index) (\(name))")
                        XCTAssertTrue(error.message.hasSuffix(message), "case \(index) (\(name)): \(error.message) vs \(message)")
                        otherErrors += 1
                    }
                }
            }
        }
        // The fixture exercises what it is meant to (so a broken feature cannot hide).
        XCTAssertEqual(rendered + raised + otherErrors, cases.count)
        XCTAssertGreaterThan(raised, 20)
        XCTAssertGreaterThan(otherErrors, 0)
        func count(_ predicate: (TemplateValue) -> Bool) -> Int { cases.filter { predicate($0) && $0["expected"] != .null }.count }
        func messages(_ item: TemplateValue) -> [TemplateValue] { if case .array(let items) = item["messages"] { items } else { [] } }
        func calls(_ item: TemplateValue) -> [TemplateValue] {
            messages(item).flatMap { message -> [TemplateValue] in if case .array(let items) = message["tool_calls"] { items } else { [] } }
        }
        let coverage = [
            ("tools", count { $0["tools"] != nil }),
            ("tool calls with object arguments", count { calls($0).contains { if case .object = $0["function"]?["arguments"] { true } else { false } } }),
            ("tool calls with string arguments", count { calls($0).contains { if case .string = $0["function"]?["arguments"] { true } else { false } } }),
            ("tool results", count { messages($0).contains { $0["role"] == "tool" } }),
            ("reasoning_content", count { messages($0).contains { if case .string = $0["reasoning_content"] { true } else { false } } }),
            ("inline <think>", count { messages($0).contains { if case .string(let text) = $0["content"] { text.contains("</think>") } else { false } } }),
            ("content in parts", count { messages($0).contains { if case .array = $0["content"] { true } else { false } } }),
            ("enable_thinking false with a generation prompt",
             count { $0["variables"]?["enable_thinking"] == false && $0["add_generation_prompt"] == true }),
            ("enable_thinking true", count { $0["variables"]?["enable_thinking"] == true }),
            ("no generation prompt", count { $0["add_generation_prompt"] == false }),
        ]
        for (feature, rendered) in coverage { XCTAssertGreaterThanOrEqual(rendered, 10, "cases rendered with \(feature)") }
    }
}
