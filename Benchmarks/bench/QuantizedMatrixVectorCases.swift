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
            QuantizedMatrix.Format.allCases.map { product(shape.name, format: $0, rows: shape.rows, columns: shape.columns) }
        }
    }

    static func product(_ name: String, format: QuantizedMatrix.Format, rows: Int, columns: Int) -> BenchCase {
        let bytes = rows * columns / 32 * format.blockBytes
        return BenchCase(name: "qmatvec/\(format)/\(name)", detail: "[\(rows), \(columns)] · [\(columns)], \(bytes / 1024) KiB", bytes: bytes) {
            var generator = SeededGenerator(seed: 70)
            let blocks = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
            for b in 0..<(bytes / format.blockBytes) {
                let block = blocks.baseAddress! + b * format.blockBytes
                for i in 0..<format.blockBytes { block.storeBytes(of: UInt8.random(in: 0...255, using: &generator), toByteOffset: i, as: UInt8.self) }
                block.storeBytes(of: Float16(0.01).bitPattern, as: UInt16.self)  // a finite scale
                if format == .q4_1 { block.storeBytes(of: Float16(-0.05).bitPattern, toByteOffset: 2, as: UInt16.self) }
            }
            let matrix = QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: UnsafeRawPointer(blocks.baseAddress!))
            let x = TensorBuffer(columns, seed: 71), y = TensorBuffer(rows)
            let run = { matrix.multiply(x.matrix(rows: 1, columns: columns), into: y.matrix(rows: 1, columns: rows), accumulate: false) }
            run()
            let w = TensorBuffer(count: rows * columns)
            for r in 0..<rows { matrix.decodeRow(r, into: w.pointer + r * columns) }
            let expected = Reference.linear(x.array.map(Double.init), weight: w.array.map(Double.init), rows: 1, inFeatures: columns, outFeatures: rows)
            return Prepared(run: run, check: try check(y.array, expected, absolute: 1e-4, "\(name) \(format) product"))
        }
    }
}
