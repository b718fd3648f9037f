import Foundation
import Kernels
import ReferenceKernels

/// The plain-loop references against the kernels at a smaller size: the kernel is timed, its
/// output checked against the reference, and the reference timed too for the speed-up column.
enum NaiveCases {
    static func all(_ shape: BenchShape, plan: MeasurementPlan) -> [BenchCase] {
        let naivePlan = MeasurementPlan(warmupRuns: 0, minimumSeconds: plan.minimumSeconds / 4, minimumRuns: 1, maximumRuns: 5)
        let (rows, dim, hidden, t, d) = (64, shape.dModel, shape.dFF, 64, shape.headDim)

        let linear = BenchCase(name: "naive/linear", detail: "[\(rows), \(dim)] → \(dim)",
                               gemms: shape.linearGemm(rows: rows, inFeatures: dim, outFeatures: dim), tokens: rows) {
            let memory = BenchMemory()
            let x = memory.matrix(rows: rows, columns: dim, seed: 21), w = memory.matrix(rows: dim, columns: dim, seed: 22, scale: 0.05)
            let y = memory.matrix(rows: rows, columns: dim)
            let run = memory.timed { Linear.forward(x: x, weight: w, y: y) }
            let (xs, ws) = (x.array, w.array)
            var expected: [Float] = []
            let naive = naivePlan.measure { expected = Reference.linear(xs, weight: ws, rows: rows, inFeatures: dim, outFeatures: dim) }
            run()
            return Prepared(run: run, check: try check(y.array, expected.map(Double.init), absolute: 1e-5, "linear vs naive"),
                            referenceSeconds: naive.median)
        }

        let swiglu = BenchCase(name: "naive/swiglu", detail: "[\(rows), \(dim)] ↔ \(hidden)",
                               gemms: shape.linearGemm(rows: rows, inFeatures: dim, outFeatures: 2 * hidden) + shape.linearGemm(rows: rows, inFeatures: hidden, outFeatures: dim),
                               tokens: rows) {
            let memory = BenchMemory()
            let ffn = SwiGLUOperands(memory, rows: rows, dim: dim, hidden: hidden, seed: 23)
            let run = memory.timed { ffn.forward() }
            let (xs, a, b, c) = (ffn.x.array, ffn.w1, ffn.down.array, ffn.w3)
            var expected: [Float] = []
            let naive = naivePlan.measure { expected = Reference.swiglu(xs, w1: a, w2: b, w3: c, rows: rows, dim: dim, hidden: hidden) }
            run()
            return Prepared(run: run, check: try check(ffn.y.array, expected.map(Double.init), absolute: 1e-5, "swiglu vs naive"),
                            referenceSeconds: naive.median)
        }

        let attention = BenchCase(name: "naive/attention_head", detail: "T\(t) d\(d), causal, 1 head",
                                  gemms: BenchShape(context: t, heads: 1, dModel: d).attentionGemms(batch: 1), tokens: t) {
            let memory = BenchMemory()
            let q = memory.matrix(rows: t, columns: d, seed: 27), k = memory.matrix(rows: t, columns: d, seed: 28)
            let v = memory.matrix(rows: t, columns: d, seed: 29)
            let out = memory.matrix(rows: t, columns: d), probs = memory.matrix(rows: t, columns: t)
            let dims = AttentionDims(batch: 1, queryLength: t, keyLength: t, heads: 1, kvHeads: 1, headDim: d)
            let run = memory.timed {
                ScaledDotProductAttention.forward(q: q, k: k, v: v, out: out, probs: probs, dims: dims, mask: .causal(queryOffset: 0))
            }
            let (qs, ks, vs) = (q.array, k.array, v.array)
            let mask = Reference.causalMask(t)
            var expected: [Float] = []
            let naive = naivePlan.measure { expected = Reference.attention(q: qs, k: ks, v: vs, queries: t, keys: t, headDim: d, allowed: mask) }
            run()
            return Prepared(run: run, check: try check(out.array, expected.map(Double.init), absolute: 1e-5, "attention vs naive"),
                            referenceSeconds: naive.median)
        }

        let norm = BenchCase(name: "naive/rmsnorm", detail: "[\(rows * 4), \(dim)]", tokens: rows * 4) {
            let n = rows * 4
            let memory = BenchMemory()
            let x = memory.matrix(rows: n, columns: dim, seed: 30), w = memory.vector(dim, seed: 31)
            let y = memory.matrix(rows: n, columns: dim), rstd = memory.vector(n)
            let run = memory.timed { RMSNorm.forward(x: x, weight: w, y: y, rstd: rstd) }
            let (xs, ws) = (x.array, Array(w))
            var expected: [Float] = []
            let naive = naivePlan.measure { expected = Reference.rmsNorm(xs, weight: ws, rows: n, dim: dim) }
            run()
            return Prepared(run: run, check: try check(y.array, expected.map(Double.init), absolute: 1e-6, "rmsnorm vs naive"),
                            referenceSeconds: naive.median)
        }

        let softmax = BenchCase(name: "naive/softmax", detail: "[\(t * 4), \(t * 4)]", tokens: nil) {
            let n = t * 4
            let memory = BenchMemory()
            let x = memory.matrix(rows: n, columns: n, seed: 32, scale: 5), y = memory.matrix(rows: n, columns: n)
            let run = memory.timed { Softmax.forward(x: x, y: y) }
            let xs = x.array
            var expected: [Float] = []
            let naive = naivePlan.measure { expected = Reference.softmax(xs, rows: n, cols: n) }
            run()
            return Prepared(run: run, check: try check(y.array, expected.map(Double.init), absolute: 1e-6, "softmax vs naive"),
                            referenceSeconds: naive.median)
        }
        let rope = BenchCase(name: "naive/rope", detail: "[\(rows * 4), \(shape.heads)×\(d)]", tokens: rows * 4) {
            let n = rows * 4, width = shape.heads * d
            let table = RoPETable(headDim: d, maxPositions: n, theta: shape.theta)
            let positions = Array(0..<n)
            let memory = BenchMemory()
            let rope = memory.rotary(table, positions: positions)
            let x = memory.matrix(rows: n, columns: width, seed: 33), y = memory.matrix(rows: n, columns: width)
            let run = memory.timed { RoPE.forward(x: x, y: y, rope) }
            // The reference in Double: in Float its angles lose precision at large positions.
            let xs = x.array.map(Double.init)
            let headPositions = positions.flatMap { Array(repeating: $0, count: shape.heads) }
            var expected: [Double] = []
            let naive = naivePlan.measure {
                expected = Reference.rope(xs, rows: n * shape.heads, dim: d, positions: headPositions, theta: shape.theta)
            }
            run()
            return Prepared(run: run, check: try check(y.array, expected, absolute: 2e-6, "rope vs naive"), referenceSeconds: naive.median)
        }
        return [linear, swiglu, attention, norm, softmax, rope]
    }
}
