import Foundation
import XCTest

/// A test case with a fresh, empty directory for each test (`directory`), removed afterwards:
/// for tests that write files.
open class TemporaryDirectoryTestCase: XCTestCase {
    /// This test's own directory under the system's temporary folder.
    public var directory = ""

    open override func setUpWithError() throws {
        try super.setUpWithError()
        let name = "\(type(of: self))-\(UUID().uuidString)"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    open override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
        try super.tearDownWithError()
    }
}
