import Foundation
import XCTest

/// Locates the read-only reference data in `../shared/data` beside the package. A user's clone
/// has none, so tests that need it call ``requireSharedData(_:)`` and are skipped with a message.
public enum Fixtures {
    /// `<package root>/../shared/data`, found from this source file's location.
    public static let sharedData: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root
        .deletingLastPathComponent()
        .appendingPathComponent("shared/data")

    /// The path of `relative` inside the shared data, or an XCTSkip naming what is missing.
    public static func requireSharedData(_ relative: String) throws -> String {
        let url = sharedData.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            let message = "SKIPPED: reference fixture \(url.path) is absent (no ../shared beside the package); this comparison did not run"
            print(message)
            throw XCTSkip(message)
        }
        return url.path
    }

    /// `<package root>/models/SmolLM2-135M-Instruct.Q4_1.gguf` (fetched by
    /// `scripts/fetch-models.sh`), or an XCTSkip saying how to get it.
    public static func requireSmolLM2() throws -> String {
        try requireModelFile("SmolLM2-135M-Instruct.Q4_1.gguf", for: "the SmolLM2 comparison")
    }

    /// `<package root>/models/gemma-3-270m-q4_k_m.gguf` (Gemma 3 270M, fetched by `scripts/fetch-models.sh`).
    public static func requireGemma3() throws -> String {
        try requireModelFile("gemma-3-270m-q4_k_m.gguf", for: "the Gemma 3 comparison")
    }

    /// `<package root>/models/<relative>` (fetched by `scripts/fetch-models.sh`), or an XCTSkip
    /// naming the file and the check (`purpose`) that did not run.
    public static func requireModelFile(_ relative: String, for purpose: String) throws -> String {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = packageRoot.appendingPathComponent("models/" + relative).path
        guard FileManager.default.fileExists(atPath: path) else {
            let message = "SKIPPED: \(path) is absent (run scripts/fetch-models.sh); \(purpose) did not run"
            print(message)
            throw XCTSkip(message)
        }
        return path
    }
}
