/// Token embedding: a row gather from a `[vocab, dim]` table.
public enum Embedding {
    /// ids: [rows] (each in 0..<vocabSize), table: [vocabSize, dim] → y: [rows, dim].
    ///
    /// Ids are validated by the caller at the API boundary (the model reports the offending
    /// position); here an out-of-range id is a programming error.
    public static func forward(
        ids: UnsafeBufferPointer<Int32>, table: UnsafeBufferPointer<Float>,
        y: UnsafeMutableBufferPointer<Float>, vocabSize: Int, dim: Int
    ) {
        requireShape(table, [vocabSize, dim], "Embedding.forward", "table")
        requireShape(y, [ids.count, dim], "Embedding.forward", "y")
        for (row, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < vocabSize,
                         "Embedding.forward: id \(id) at position \(row) is outside 0..<\(vocabSize)")
            (y.baseAddress! + row * dim).update(from: table.baseAddress! + Int(id) * dim, count: dim)
        }
    }

    /// dy: [rows, dim] → dTable[ids[r]] += dy[r]. Serial: two rows may share an id.
    public static func backward(
        ids: UnsafeBufferPointer<Int32>, dy: UnsafeBufferPointer<Float>,
        dTable: UnsafeMutableBufferPointer<Float>, vocabSize: Int, dim: Int
    ) {
        requireShape(dy, [ids.count, dim], "Embedding.backward", "dy")
        requireShape(dTable, [vocabSize, dim], "Embedding.backward", "dTable")
        for (row, id) in ids.enumerated() {
            let source = dy.baseAddress! + row * dim
            let target = dTable.baseAddress! + Int(id) * dim
            for i in 0..<dim { target[i] += source[i] }
        }
    }
}
