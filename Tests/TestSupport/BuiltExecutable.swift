import Foundation
import XCTest

/// The executable `name` that SwiftPM built beside the running test bundle (the `lm` the tests
/// run as a user would), or an XCTSkip saying it was not found.
public func builtExecutable(_ name: String) throws -> String {
    var url = Bundle.main.bundleURL
    for _ in 0..<4 {
        let candidate = url.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        url.deleteLastPathComponent()
    }
    let message = "SKIPPED: the \(name) executable was not found beside the tests (\(Bundle.main.bundleURL.path))"
    print(message)
    throw XCTSkip(message)
}
