import Kernels

/// A heap buffer of Floats owned by a benchmark, filled once with seeded values, so timed
/// closures touch raw pointers only (no array copy-on-write checks inside the loop).
final class Buffer {
    let mutable: UnsafeMutableBufferPointer<Float>
    var readOnly: UnsafeBufferPointer<Float> { UnsafeBufferPointer(mutable) }
    var pointer: UnsafeMutablePointer<Float> { mutable.baseAddress! }
    var count: Int { mutable.count }

    /// `count` values uniform in −scale…scale from a fixed seed.
    init(_ count: Int, seed: UInt64 = 1, scale: Float = 1) {
        mutable = .allocate(capacity: max(count, 1))
        var generator = SeededGenerator(seed: seed)
        for i in 0..<count { mutable[i] = Float.random(in: -scale...scale, using: &generator) }
    }

    init(copying values: [Float]) {
        mutable = .allocate(capacity: max(values.count, 1))
        _ = mutable.initialize(from: values)
    }

    var array: [Float] { Array(readOnly.prefix(count)) }

    deinit { mutable.deallocate() }
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
