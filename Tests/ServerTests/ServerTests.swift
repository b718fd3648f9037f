import XCTest
final class ServerTests: XCTestCase { func testPlaceholder() {} }
