import ChatTemplate
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
}
