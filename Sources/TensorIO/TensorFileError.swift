/// A problem with a tensor file (safetensors or NPY), naming the file and what is wrong with it:
/// the tensor, key, dtype or shape concerned.
public struct TensorFileError: Error, CustomStringConvertible, Equatable {
    /// The file's path as given.
    public let path: String
    /// What is wrong, in a sentence that names the tensor or key concerned.
    public let message: String

    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}
