import Foundation
import TestSupport
import XCTest

/// `lm lens`, `lm attribute` and `lm patch` on the real SmolLM2 as a learner runs them: the
/// tables, the SVG files, and the refusals of bad input.
final class InspectionCommandTests: TemporaryDirectoryTestCase {
    func testLensAttributeAndPatchOnSmolLM2() throws {
        let model = try Fixtures.requireSmolLM2()
        let prompt = "The capital of France is"
        let lensSVG = directory + "/lens.svg"
        let lens = try LMProcess.run(["lens", "--model", model, "--prompt", prompt, "--layers", "0,29-30", "--output", lensSVG])
        XCTAssertEqual(lens.status, 0, lens.error)
        XCTAssertTrue(lens.output.contains("30 (out)") && lens.output.contains("␣Paris"), lens.output)
        XCTAssertTrue(lens.output.contains("the answer '␣Paris' is the top token from layer 30 on"), lens.output)
        XCTAssertTrue(try String(contentsOfFile: lensSVG, encoding: .utf8).hasPrefix("<svg"))

        let attribute = try LMProcess.run(["attribute", "--model", model, "--prompt", prompt, "--answer", " Paris"])
        XCTAssertEqual(attribute.status, 0, attribute.error)
        XCTAssertTrue(attribute.output.contains("logit of '␣Paris'") && attribute.output.contains("layer 23 head 4"), attribute.output)

        let patchSVG = directory + "/patch.svg"
        let patch = try LMProcess.run(["patch", "--model", model, "--clean", prompt, "--corrupted", "The capital of Italy is", "--output", patchSVG, "--quiet"])
        XCTAssertEqual(patch.status, 0, patch.error)
        XCTAssertTrue(patch.output.contains("clean answer '␣Paris'") && patch.output.contains("155 patched runs"), patch.output)
        XCTAssertEqual(try String(contentsOfFile: patchSVG, encoding: .utf8).components(separatedBy: "<svg").count - 1, 2, "one picture, stacked")

        for (arguments, needle) in [
            (["patch", "--model", model, "--clean", prompt, "--corrupted", "The capital city of Italy is"], "the same number"),
            (["lens", "--model", model, "--prompt", prompt, "--layers", "31"], "--layers: 31 is outside 0…30"),
            (["attribute", "--model", model, "--prompt", prompt, "--answer", " Paris, France"], "is 3 tokens"),
            (["lens", "--model", model, "--prompt", prompt, "--output", model], "--output"),
        ] {
            let run = try LMProcess.run(arguments)
            XCTAssertNotEqual(run.status, 0, "\(arguments)")
            XCTAssertTrue(run.error.contains(needle), "\(arguments): \(run.error)")
        }
    }
}
