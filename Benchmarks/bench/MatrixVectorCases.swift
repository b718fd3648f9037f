import Kernels
import ReferenceKernels

/// The decode step's matrix–vector products at the stories15M shapes, our hand kernel and
/// `cblas_sgemv` side by side: the measurements behind ``MatrixVector``'s existence. MB/s is
/// the weight matrix streamed per second.
enum MatrixVectorCases {
    static let shapes: [(name: String, rows: Int, columns: Int)] = [
        ("lm_head", 32_000, 288), ("qkv", 864, 288), ("gate_up", 1536, 288), ("down", 288, 768),
    ]

    static func all() -> [BenchCase] {
        shapes.flatMap { shape in [true, false].map { hand in product(shape.name, rows: shape.rows, columns: shape.columns, hand: hand) } }
    }

    static func product(_ name: String, rows: Int, columns: Int, hand: Bool) -> BenchCase {
        BenchCase(name: "matvec/\(hand ? "ours" : "sgemv")/\(name)", detail: "[\(rows), \(columns)] · [\(columns)]",
                  bytes: rows * columns * 4) {
            guard !hand || MatrixVector.handKernelAvailable else { throw BenchFailure(description: "no AVX2+FMA on this CPU: the hand kernel is off") }
            let w = TensorBuffer(rows * columns, seed: 60, scale: 0.05), x = TensorBuffer(columns, seed: 61), y = TensorBuffer(rows)
            let run = {
                let saved = MatrixVector.useHandKernel
                MatrixVector.useHandKernel = hand
                MatrixVector.multiply(w: w.pointer, ldw: columns, x: x.pointer, y: y.pointer, rows: rows, columns: columns)
                MatrixVector.useHandKernel = saved
            }
            run()
            let expected = Reference.linear(x.array.map(Double.init), weight: w.array.map(Double.init), rows: 1, inFeatures: columns, outFeatures: rows)
            return Prepared(run: run, check: try check(y.array, expected, absolute: 1e-5, "\(name) product"))
        }
    }
}
