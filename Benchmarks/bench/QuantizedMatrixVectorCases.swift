import Kernels
import ReferenceKernels

/// The decode step's matrix–vector products with weights kept in ggml blocks (Q8_0, Q4_0, Q4_1)
/// at SmolLM2-135M's shapes, and the Float32 hand kernel on the same shapes: MB/s is the bytes
/// of weights read per second, to set beside the streaming read rate of the same run.
enum QuantizedMatrixVectorCases {
    static let shapes: [(name: String, rows: Int, columns: Int)] = [
        ("lm_head", 49_152, 576), ("qkv", 960, 576), ("gate_up", 3_072, 576), ("down", 576, 1_536),
    ]

    static func all() -> [BenchCase] {
        shapes.flatMap { shape in
            QuantizedMatrix.Format.allCases.filter { shape.columns % $0.blockValues == 0 }.flatMap { format in
                [false, true].filter { !$0 || format.takesEightBitActivations }.map { product(shape.name, format: format, rows: shape.rows, columns: shape.columns, eightBitActivations: $0) }
            }
        }
    }

    /// `eightBitActivations`: ggml's design (`qmatvec8/…`), checked to a looser bound since the
    /// activations are rounded.
    static func product(_ name: String, format: QuantizedMatrix.Format, rows: Int, columns: Int, eightBitActivations: Bool) -> BenchCase {
        let bytes = rows * columns / format.blockValues * format.blockBytes
        let group = eightBitActivations ? "qmatvec8" : "qmatvec"
        return BenchCase(name: "\(group)/\(format)/\(name)", detail: "[\(rows), \(columns)] · [\(columns)], \(bytes / 1024) KiB", bytes: bytes) {
            var generator = SeededGenerator(seed: 70)
            let blocks = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
            for b in 0..<(bytes / format.blockBytes) {
                let block = blocks.baseAddress! + b * format.blockBytes
                for i in 0..<format.blockBytes { block.storeBytes(of: UInt8.random(in: 0...255, using: &generator), toByteOffset: i, as: UInt8.self) }
                // Finite scales (and minimums) where the format keeps them.
                switch format {
                case .q6_K: block.storeBytes(of: Float16(0.0005).bitPattern, toByteOffset: 208, as: UInt16.self)
                case .q4_K, .q5_K:
                    block.storeBytes(of: Float16(0.0005).bitPattern, as: UInt16.self)
                    block.storeBytes(of: Float16(0.0005).bitPattern, toByteOffset: 2, as: UInt16.self)
                case .q4_1, .q5_1:
                    block.storeBytes(of: Float16(0.01).bitPattern, as: UInt16.self)
                    block.storeBytes(of: Float16(-0.05).bitPattern, toByteOffset: 2, as: UInt16.self)
                case .q4_0, .q5_0, .q8_0: block.storeBytes(of: Float16(0.01).bitPattern, as: UInt16.self)
                }
            }
            let matrix = QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: UnsafeRawPointer(blocks.baseAddress!))
            let x = TensorBuffer(columns, seed: 71), y = TensorBuffer(rows)
            if eightBitActivations && !matrix.multiplyQuantizingActivations(x.pointer, into: y.pointer) {
                throw BenchFailure(description: "no AVX2+FMA+F16C on this CPU")
            }
            let run = eightBitActivations
                ? { _ = matrix.multiplyQuantizingActivations(x.pointer, into: y.pointer) }
                : { matrix.multiply(x.matrix(rows: 1, columns: columns), into: y.matrix(rows: 1, columns: rows), accumulate: false) }
            run()
            let w = TensorBuffer(count: rows * columns)
            for r in 0..<rows { matrix.decodeRow(r, into: w.pointer + r * columns) }
            let expected = Reference.linear(x.array.map(Double.init), weight: w.array.map(Double.init), rows: 1, inFeatures: columns, outFeatures: rows)
            // 8-bit activations: each x is off by at most half a step (max|x| of its block / 127), so
            // row r is off by at most Σ_j (|w_rj| + |m|) · step_j / 2: the bound checked.
            // Float32 sums: relative to the largest output (K-quant values reach a few units).
            var tolerance = 1e-5 * max(1, expected.map(abs).max() ?? 0)
            if eightBitActivations {
                let xs = x.array
                let steps = (0..<(columns / 32)).map { b in Double(xs[(b * 32)..<(b * 32 + 32)].map { abs($0) }.max()!) / 127 }
                var largest = 0.0
                for r in 0..<rows {
                    var bound = 0.0
                    for j in 0..<columns {
                        let magnitude = Double(abs(w.storage[r * columns + j])) + 0.05
                        bound += magnitude * steps[j / 32] / 2
                    }
                    largest = max(largest, bound)
                }
                tolerance += largest
            }
            return Prepared(run: run, check: try check(y.array, expected, absolute: tolerance, "\(name) \(format) product"))
        }
    }
}
