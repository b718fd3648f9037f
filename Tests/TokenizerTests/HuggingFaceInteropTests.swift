import Foundation
import Kernels
@testable import Tokenizer
import XCTest

/// Optional: when Python's `tokenizers` library is installed, it must load our tokenizer.json and
/// encode exactly as we do. Skipped, with a message, where it is not installed.
final class HuggingFaceInteropTests: XCTestCase {
    func testPythonTokenizersEncodesAsWeDo() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hf-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Trained on, and encoding, hard-case text: whitespace runs before symbols and at the end,
        // contractions, other scripts (the pre-tokenizer's corner cases, not only plain prose).
        let tokenizer = PreTokenizerDifferentialTests.tokenizer
        try TokenizerDirectory.save(tokenizer, to: directory)
        var generator = SeededGenerator(seed: 12)
        var text = TokenizerFactory.sampleText + " <|endoftext|> tail 🙃"
        for _ in 0..<3000 { text += HardCaseText.random(&generator) }
        text += "a \n\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/text.txt"))
        let script = """
        import sys
        try:
            from tokenizers import Tokenizer
        except ImportError:
            print("MISSING"); sys.exit(0)
        t = Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
        print(" ".join(map(str, t.encode(open(sys.argv[1] + "/text.txt", encoding="utf-8", newline="").read()).ids)))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, directory]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { throw XCTSkip("SKIPPED: python3 is not available") }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let trimmed = output.trimmingCharacters(in: .whitespacesAndNewlines)
        if process.terminationStatus != 0 || trimmed == "MISSING" {
            print("SKIPPED: Python's tokenizers library is not installed; the tokenizer.json interop check did not run")
            throw XCTSkip("Python tokenizers not installed")
        }
        XCTAssertEqual(trimmed.split(separator: " ").map { Int32($0)! }, tokenizer.encode(text))
    }
}
