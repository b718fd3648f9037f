import Kernels

/// Benchmark inputs: seeded buffers, so timed closures touch raw memory only (no array
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

/// The memory one case's timed body works on: every matrix, vector and index list it reads or
/// writes, made once with its shape. Views and ``RotaryPositions`` do not keep their memory
/// alive (they are pointers with a shape), so the timed body is wrapped by ``timed(_:)``, which
/// holds this object. Buffers only the correctness check needs stay local to the check.
final class BenchMemory {
    private var buffers: [TensorBuffer] = []
    private var deallocations: [() -> Void] = []

    deinit { for deallocate in deallocations { deallocate() } }

    /// A `[rows, columns]` matrix: zeros, or values uniform in −scale…scale from `seed`
    /// (the same values `TensorBuffer(rows · columns, seed:, scale:)` holds).
    func matrix(rows: Int, columns: Int, seed: UInt64? = nil, scale: Float = 1) -> MatrixView {
        let buffer = seed.map { TensorBuffer(rows * columns, seed: $0, scale: scale) } ?? TensorBuffer(count: rows * columns)
        buffers.append(buffer)
        return buffer.matrix(rows: rows, columns: columns)
    }

    /// A copy of `values` as a `[rows, columns]` matrix.
    func matrix(copying values: [Float], rows: Int, columns: Int) -> MatrixView {
        let buffer = TensorBuffer(copying: values)
        buffers.append(buffer)
        return buffer.matrix(rows: rows, columns: columns)
    }

    /// `count` zeros, or seeded values as ``matrix(rows:columns:seed:scale:)``.
    func vector(_ count: Int, seed: UInt64? = nil, scale: Float = 1) -> UnsafeMutableBufferPointer<Float> {
        matrix(rows: 1, columns: count, seed: seed, scale: scale).elements
    }

    /// A copy of `values` (token ids, positions).
    func copy<Element: BitwiseCopyable>(_ values: [Element]) -> UnsafeBufferPointer<Element> {
        let storage = UnsafeMutableBufferPointer<Element>.allocate(capacity: max(values.count, 1))
        _ = storage.initialize(from: values)
        deallocations.append { storage.deallocate() }
        return UnsafeBufferPointer(rebasing: storage[0..<values.count])
    }

    /// RoPE at `positions` (one per row) with `table`.
    func rotary(_ table: RoPETable, positions: [Int]) -> RotaryPositions {
        RotaryPositions(table: table, positions: copy(positions))
    }

    /// `body` as a timed closure that keeps this memory alive.
    func timed(_ body: @escaping () -> Void) -> () -> Void {
        { withExtendedLifetime(self) { body() } }
    }
}

/// One SwiGLU layer's operands in a case's memory: seeded x and weights (w1 and w3 packed into the
/// gate/up weight, and kept apart for the reference), zeroed outputs and saved activations.
struct SwiGLUOperands {
    let x: MatrixView, gateUpWeight: MatrixView, down: MatrixView
    let y: MatrixView, gateUp: MatrixView, gated: MatrixView
    /// w1, w3: [hidden, dim], for the reference.
    let w1: [Float], w3: [Float]

    /// Seeds `seed` (x), `seed + 1` (w1), `seed + 2` (w3) and `seed + 3` (w2).
    init(_ memory: BenchMemory, rows: Int, dim: Int, hidden: Int, seed: UInt64) {
        w1 = TensorBuffer(hidden * dim, seed: seed + 1, scale: 0.05).array
        w3 = TensorBuffer(hidden * dim, seed: seed + 2, scale: 0.05).array
        x = memory.matrix(rows: rows, columns: dim, seed: seed)
        down = memory.matrix(rows: dim, columns: hidden, seed: seed + 3, scale: 0.05)
        gateUpWeight = memory.matrix(copying: SwiGLU.packGateUp(w1: w1, w3: w3, hidden: hidden, dim: dim), rows: 2 * hidden, columns: dim)
        y = memory.matrix(rows: rows, columns: dim)
        gateUp = memory.matrix(rows: rows, columns: 2 * hidden)
        gated = memory.matrix(rows: rows, columns: hidden)
    }

    /// The forward pass on these operands.
    func forward() { SwiGLU.forward(x: x, gateUpWeight: gateUpWeight, downWeight: down, y: y, gateUp: gateUp, gated: gated) }
}
