extension NPYFile {
    /// The integer dtypes a token-id file may hold: what `lm tokenizer encode` writes (int32),
    /// NumPy's default (int64), and the 16-bit types corpora are often stored in (nanoGPT's uint16).
    public static let tokenIDTypes: [ElementType] = [.int32, .int64, .uint16, .int16]

    /// Stops unless the file holds token ids (one of ``tokenIDTypes``), naming the file and its dtype.
    public func requireTokenIDs() throws {
        guard Self.tokenIDTypes.contains(type) else {
            throw TensorFileError(path: path, "token ids must be int32, int64, uint16 or int16, found \(type.rawValue)")
        }
    }
}
