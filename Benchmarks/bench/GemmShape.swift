import Kernels

/// One `cblas_sgemm` call shape, `C[m, n] = op(A) · op(B)` with `op(A)` `[m, k]` (A stored
/// `[k, m]` when transposed: a weight gradient `dYᵀ·X`) and `op(B) = Bᵀ` (weights stored
/// `[out, in]`) or `B`. A benchmark case lists the GEMMs it performs; timing each shape raw,
/// with contiguous operands and nothing around it, gives the ceiling the case is compared with.
struct GemmShape: Hashable, Codable, CustomStringConvertible {
    var m: Int
    var n: Int
    var k: Int
    var transposeA = false
    var transposeB: Bool

    init(m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool) {
        self.m = m
        self.n = n
        self.k = k
        self.transposeA = transposeA
        self.transposeB = transposeB
    }

    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    var description: String {
        (transposeA ? "[\(k)×\(m)]ᵀ" : "\(m)×\(k)") + "·" + (transposeB ? "[\(n)×\(k)]ᵀ" : "\(k)×\(n)")
    }

    /// Leading dimensions of contiguous operands of this shape.
    var lda: Int { transposeA ? m : k }
    var ldb: Int { transposeB ? k : n }
}

/// GEMM calls of a case: how many times each shape runs in one repetition.
typealias GemmWork = [GemmShape: Int]

extension Dictionary where Key == GemmShape, Value == Int {
    var flops: Double { reduce(0) { $0 + $1.key.flops * Double($1.value) } }
    static func + (lhs: GemmWork, rhs: GemmWork) -> GemmWork { lhs.merging(rhs, uniquingKeysWith: +) }
    static func * (lhs: GemmWork, factor: Int) -> GemmWork { lhs.mapValues { $0 * factor } }
}

/// Times each raw GEMM shape once per run and remembers it: the same-run ceiling.
final class GemmCeiling {
    private var medians: [GemmShape: Double] = [:]
    private(set) var timings: [(GemmShape, Timing)] = []
    let plan: MeasurementPlan

    init(plan: MeasurementPlan) { self.plan = plan }

    /// Median seconds of one raw `cblas_sgemm` of this shape.
    func seconds(_ shape: GemmShape) -> Double {
        if let known = medians[shape] { return known }
        let a = TensorBuffer([Float](repeating: 0.5, count: shape.m * shape.k))
        let b = TensorBuffer([Float](repeating: 0.25, count: shape.k * shape.n))
        let c = TensorBuffer(count: shape.m * shape.n)
        let timing = plan.measure {
            sgemm(transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n, k: shape.k,
                  a: a.pointer, lda: shape.lda, b: b.pointer, ldb: shape.ldb, c: c.pointer, ldc: shape.n)
        }
        medians[shape] = timing.median
        timings.append((shape, timing))
        return timing.median
    }

    /// Seconds raw sgemm needs for all of `work`: Σ count × median time of the shape.
    func seconds(_ work: GemmWork) -> Double {
        work.reduce(0) { $0 + Double($1.value) * seconds($1.key) }
    }
}

/// Raw `cblas_sgemm` on every GEMM of a case, with contiguous operands and nothing else: timed
/// in alternation with the case, it is the ceiling the case's '% sgemm' is measured against.
final class RawGemms {
    private let work: [(GemmShape, Int)]
    private let a: TensorBuffer, b: TensorBuffer, c: TensorBuffer

    init(_ work: GemmWork) {
        self.work = work.sorted { $0.key.flops > $1.key.flops }.map { ($0.key, $0.value) }
        let largest = { (size: (GemmShape) -> Int) in work.keys.map(size).max() ?? 1 }
        a = TensorBuffer(count: largest { $0.m * $0.k })
        b = TensorBuffer(count: largest { $0.k * $0.n })
        c = TensorBuffer(count: largest { $0.m * $0.n })
        for i in 0..<a.count { a.pointer[i] = Float(i % 7) * 0.1 }
        for i in 0..<b.count { b.pointer[i] = Float(i % 5) * 0.1 }
    }

    func run() {
        for (shape, count) in work {
            for _ in 0..<count {
                sgemm(transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n, k: shape.k,
                      a: a.pointer, lda: shape.lda, b: b.pointer, ldb: shape.ldb, c: c.pointer, ldc: shape.n)
            }
        }
    }
}
