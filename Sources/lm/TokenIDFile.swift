import Model
import TensorIO

/// Token ids read from an NPY file for the model commands: shape [T] or [B, T], of a dtype in
/// `NPYFile.tokenIDTypes` (the rule every command that reads ids follows).
struct TokenIDFile {
    let ids: [Int32]
    let batch: Int
    let length: Int

    /// Errors name the file: another dtype, another rank, an id outside Int32.
    init(path: String) throws {
        let file = try NPYFile(path: path)
        try file.requireTokenIDs()
        switch file.shape.count {
        case 1: (batch, length) = (1, file.shape[0])
        case 2: (batch, length) = (file.shape[0], file.shape[1])
        default: throw ModelError("\(path): token ids must have shape [T] or [B, T], found \(file.shape)")
        }
        let values = try file.integers()
        try file.requireIntact()
        if let bad = values.firstIndex(where: { Int32(exactly: $0) == nil }) {
            throw ModelError("\(path): id \(values[bad]) at index \(bad) is out of range")
        }
        ids = values.map { Int32($0) }
    }
}
