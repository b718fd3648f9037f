/// A problem with a model's configuration, checkpoint or input, named precisely enough to fix:
/// the file, key, tensor or position concerned.
public struct ModelError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
