import Model
import XCTest

/// `<think>…</think>` split from the answer however the text is cut into pieces.
final class ReasoningSplitterTests: XCTestCase {
    /// The reasoning and the content of `text` fed in pieces of `size` characters.
    func split(_ text: String, size: Int, inside: Bool = false) -> (reasoning: String, content: String) {
        var splitter = ReasoningSplitter(insideReasoning: inside)
        var reasoning = "", content = ""
        var parts: [ReasoningSplitter.Part] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            parts += splitter.append(String(rest.prefix(size)))
            rest = rest.dropFirst(size)
        }
        parts += splitter.finish()
        for part in parts {
            switch part {
            case .reasoning(let piece): reasoning += piece
            case .content(let piece): content += piece
            }
        }
        return (reasoning, content)
    }

    func testEveryCutGivesTheSameSplit() {
        let cases: [(text: String, inside: Bool, reasoning: String, content: String)] = [
            ("<think>\nLet me see: 2 + 2.\n</think>\n\nIt is 4.", false, "\nLet me see: 2 + 2.\n", "It is 4."),
            ("\n<think>a < b </thin k></think>done", false, "a < b </thin k>", "done"),
            ("Plain answer with <think> inside.", false, "", "Plain answer with <think> inside."),
            ("thinking already</think>\n\nanswer", true, "thinking already", "answer"),
            ("<think>never closed", false, "never closed", ""),
            ("<thin", false, "", "<thin"),
        ]
        for (text, inside, reasoning, content) in cases {
            for size in 1...text.count {
                let result = split(text, size: size, inside: inside)
                XCTAssertEqual(result.reasoning, reasoning, "\(text.debugDescription) in pieces of \(size)")
                XCTAssertEqual(result.content, content, "\(text.debugDescription) in pieces of \(size)")
            }
        }
    }
}
