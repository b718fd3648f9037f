/// A problem with a model's configuration, checkpoint or input, named precisely enough to fix:
/// the file, key, tensor or position concerned.
public struct ModelError: Error, CustomStringConvertible, Equatable {
    public let message: String
    /// In data-parallel training: every rank found this same problem at the same point (a
    /// non-finite loss, weights that drifted apart), so every rank stops by itself and one of
    /// them reports it. Other errors may concern one rank only, which must stop the others.
    public let isCollective: Bool

    public init(_ message: String, isCollective: Bool = false) {
        self.message = message
        self.isCollective = isCollective
    }

    public var description: String { message }
}
