import ChatTemplate
import Foundation
import XCTest

/// The chat templates of SmolLM2 (ChatML), Llama 2, Llama 3, Mistral, Zephyr and Gemma, and one
/// exercising every construct the interpreter implements, against the prompts Python's jinja2
/// renders from them (``ChatTemplateCases``).
final class ChatTemplateTests: XCTestCase {
    func testEveryTemplateRendersAsJinja2Does() throws {
        for (name, conversation, generationPrompt, expected) in ChatTemplateCases.expected {
            let template = try ChatTemplate(ChatTemplateCases.templates[name]!)
            let messages = ChatTemplateCases.conversations[conversation]!.map { ChatMessage(role: $0.0, content: $0.1) }
            let tokens = ChatTemplateCases.specialTokens[name]!
            let rendered = try template.render(messages, addGenerationPrompt: generationPrompt, bosToken: tokens.bos, eosToken: tokens.eos)
            XCTAssertEqual(rendered, expected, "\(name) on \(conversation), add_generation_prompt \(generationPrompt)")
        }
        XCTAssertGreaterThanOrEqual(ChatTemplateCases.expected.count, 20)
    }

    func testRaiseExceptionIsAnErrorWithTheTemplatesMessage() throws {
        let system = [ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "Hi")]
        for (name, message) in [("mistral", "Conversation roles must alternate"), ("gemma", "System role not supported")] {
            let template = try ChatTemplate(ChatTemplateCases.templates[name]!)
            XCTAssertThrowsError(try template.render(system, addGenerationPrompt: true)) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
                XCTAssertTrue("\(error)".contains("line 1"), "\(error)")
            }
        }
    }

    func testWhatItCannotRenderIsNamedWithItsLine() {
        let cases: [(String, String)] = [
            ("{% filter upper %}x{% endfilter %}", "'{% filter %}' is not implemented"),
            ("line one\n{{ messages | wordcount }}", "line 2: the filter 'wordcount' is not implemented"),
            ("{{ x is prime }}", "the test 'prime' is not implemented"),
            ("{% for m in messages %}", "endfor"),
            ("{{ 'unclosed }}", "never closed"),
            ("{% if %}{% endif %}", "expected a value"),
            ("{{ cycler() }}", "'cycler' is not a function"),
            ("{% endif %}", "'endif' without an opening statement"),
        ]
        for (source, message) in cases {
            XCTAssertThrowsError(try ChatTemplate(source).render([], addGenerationPrompt: false)) { error in
                XCTAssertTrue("\(error)".contains(message), "\(source): \(error)")
            }
        }
    }

    /// 300 random conversations (random roles, contents of whitespace, quotes, braces, special
    /// tokens, non-ASCII; with and without a system message and the generation prompt) over the
    /// seven templates, rendered by jinja2 when `random_conversations.json` was made
    /// (seed 2024): every prompt equal, every template exception raised here too.
    func testRandomConversationsRenderAsJinja2Does() throws {
        struct Case: Decodable {
            struct Message: Decodable { let role: String, content: String }
            let template: String, messages: [Message], add_generation_prompt: Bool, expected: String?, error: String?
        }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("random_conversations.json")
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
        XCTAssertEqual(cases.count, 300)
        for (index, item) in cases.enumerated() {
            let template = try ChatTemplate(ChatTemplateCases.templates[item.template]!)
            let tokens = ChatTemplateCases.specialTokens[item.template]!
            let messages = item.messages.map { ChatMessage(role: $0.role, content: $0.content) }
            let render = { try template.render(messages, addGenerationPrompt: item.add_generation_prompt, bosToken: tokens.bos, eosToken: tokens.eos) }
            if let expected = item.expected {
                XCTAssertEqual(try render(), expected, "case \(index) (\(item.template))")
            } else {
                XCTAssertThrowsError(try render(), "case \(index) (\(item.template)) raises in jinja2") {
                    XCTAssertTrue("\($0)".contains(item.error!), "case \(index): \($0)")
                }
            }
        }
    }
}
