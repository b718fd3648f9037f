/// Token embedding: a row gather from a `[vocab, dim]` table.
public enum Embedding {
    /// ids: [rows] (each in 0..<vocab), table: [vocab, dim] → y: [rows, dim].
    ///
    /// Ids are validated by the caller at the API boundary (the model reports the offending
    /// position); here an out-of-range id is a programming error.
    public static func forward(ids: UnsafeBufferPointer<Int32>, table: MatrixView, y: MatrixView) {
        requireShape(y, ids.count, table.columns, "Embedding.forward", "y")
        for (row, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < table.rows,
                         "Embedding.forward: id \(id) at position \(row) is outside 0..<\(table.rows)")
            y.pointer(row: row).update(from: table.pointer(row: Int(id)), count: table.columns)
        }
    }

    /// dy: [rows, dim] → dTable[ids[r]] += dy[r]. Serial: two rows may share an id.
    public static func backward(ids: UnsafeBufferPointer<Int32>, dy: MatrixView, dTable: MatrixView) {
        requireShape(dy, ids.count, dTable.columns, "Embedding.backward", "dy")
        for (row, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < dTable.rows,
                         "Embedding.backward: id \(id) at position \(row) is outside 0..<\(dTable.rows)")
            let source = dy.pointer(row: row), target = dTable.pointer(row: Int(id))
            for i in 0..<dTable.columns { target[i] += source[i] }
        }
    }
}
