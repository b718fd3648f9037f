import Kernels

/// Benchmark inputs: seeded buffers, so timed closures touch raw pointers only (no array
/// copy-on-write checks inside the loop).
extension TensorBuffer {
    /// `count` values uniform in −scale…scale from a fixed seed.
    convenience init(_ count: Int, seed: UInt64 = 1, scale: Float = 1) {
        self.init(count: count)
        var generator = SeededGenerator(seed: seed)
        for i in 0..<count { storage[i] = Float.random(in: -scale...scale, using: &generator) }
    }

    convenience init(copying values: [Float]) { self.init(values) }

    var mutable: UnsafeMutableBufferPointer<Float> { storage }
    var readOnly: UnsafeBufferPointer<Float> { UnsafeBufferPointer(storage) }
}

/// Columns `from..<from + count` of rows `firstRow..<firstRow + rows` of a `[*, width]` matrix.
func columns(_ values: [Float], firstRow: Int, rows: Int, width: Int, from: Int, count: Int) -> [Float] {
    var result: [Float] = []
    result.reserveCapacity(rows * count)
    for row in firstRow..<(firstRow + rows) {
        let start = row * width + from
        result += values[start..<(start + count)]
    }
    return result
}
