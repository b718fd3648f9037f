import Kernels
import Model
import ReferenceKernels

/// Benchmarks of the individual kernels at the model's shapes, batch 1 and 8.
enum KernelCases {
    static func all(_ shape: BenchShape) -> [BenchCase] {
        [1, 8].flatMap { batch in
            [linear("linear/out_proj", shape, batch: batch, outFeatures: shape.dModel),
             linear("linear/qkv_fused", shape, batch: batch, outFeatures: shape.qkvWidth),
             linear("linear/lm_head", shape, batch: batch, outFeatures: shape.vocab),
             attention(shape, batch: batch),
             swiglu(shape, batch: batch),
             rmsNorm(shape, batch: batch),
             rope(shape, batch: batch),
             selfAttention(shape, batch: batch)]
        }
    }

    /// The first `rows` rows of x · Wᵀ in Double, to check a large product cheaply.
    static func referenceRows(_ x: MatrixView, _ w: MatrixView, rows: Int) -> [Double] {
        Reference.linear(x.rows(0..<rows).array.map(Double.init), weight: w.array.map(Double.init),
                         rows: rows, inFeatures: w.columns, outFeatures: w.rows)
    }

    static func linear(_ name: String, _ shape: BenchShape, batch: Int, outFeatures: Int) -> BenchCase {
        let rows = batch * shape.context, inFeatures = shape.dModel
        return BenchCase(
            name: "\(name)/B\(batch)", detail: "[\(rows), \(inFeatures)] → \(outFeatures)",
            gemms: shape.linearGemm(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures), tokens: rows
        ) {
            let memory = BenchMemory()
            let x = memory.matrix(rows: rows, columns: inFeatures, seed: 1)
            let w = memory.matrix(rows: outFeatures, columns: inFeatures, seed: 2, scale: 0.05)
            let y = memory.matrix(rows: rows, columns: outFeatures)
            let run = memory.timed { Linear.forward(x: x, weight: w, y: y) }
            run()
            let checked = try check(y.rows(0..<2).array, referenceRows(x, w, rows: 2), absolute: 1e-5, "\(name) rows 0–1")
            return Prepared(run: run, check: checked)
        }
    }

    static func attention(_ shape: BenchShape, batch: Int) -> BenchCase {
        let dims = shape.attentionDims(batch: batch), t = shape.context, width = shape.qkvWidth, d = shape.headDim
        return BenchCase(
            name: "attention/sdpa_causal/B\(batch)", detail: "B\(batch) H\(shape.heads) T\(t) d\(d)",
            gemms: shape.attentionGemms(batch: batch), tokens: batch * t
        ) {
            let memory = BenchMemory()
            let qkv = memory.matrix(rows: batch * t, columns: width, seed: 3), out = memory.matrix(rows: batch * t, columns: shape.dModel)
            let probs = memory.matrix(rows: batch * shape.heads * t, columns: t)
            let (q, k, v) = CausalSelfAttention.split(qkv, dims)
            let run = memory.timed {
                ScaledDotProductAttention.forward(q: q, k: k, v: v, out: out, probs: probs, dims: dims, mask: .causal(queryOffset: 0))
            }
            run()
            // Check the last head of the last batch entry against the plain-loop reference.
            let (b, h) = (batch - 1, shape.heads - 1)
            func head(_ view: MatrixView) -> MatrixView { view.rows((b * t)..<((b + 1) * t)).head(h, size: d) }
            let expected = Reference.attention(q: head(q).array.map(Double.init), k: head(k).array.map(Double.init),
                                               v: head(v).array.map(Double.init),
                                               queries: t, keys: t, headDim: d, allowed: Reference.causalMask(t))
            let got = head(out).array
            return Prepared(run: run, check: try check(got, expected, absolute: 1e-5, "attention head \(h)"))
        }
    }

    static func swiglu(_ shape: BenchShape, batch: Int) -> BenchCase {
        let rows = batch * shape.context, (dim, hidden) = (shape.dModel, shape.dFF)
        return BenchCase(
            name: "ffn/swiglu/B\(batch)", detail: "[\(rows), \(dim)] ↔ \(hidden)",
            gemms: shape.linearGemm(rows: rows, inFeatures: dim, outFeatures: 2 * hidden) + shape.linearGemm(rows: rows, inFeatures: hidden, outFeatures: dim),
            tokens: rows
        ) {
            let memory = BenchMemory()
            let ffn = SwiGLUOperands(memory, rows: rows, dim: dim, hidden: hidden, seed: 4)
            let run = memory.timed { ffn.forward() }
            run()
            let expected = Reference.swiglu(ffn.x.rows(0..<2).array.map(Double.init), w1: ffn.w1.map(Double.init), w2: ffn.down.array.map(Double.init),
                                            w3: ffn.w3.map(Double.init), rows: 2, dim: dim, hidden: hidden)
            return Prepared(run: run, check: try check(ffn.y.rows(0..<2).array, expected, absolute: 1e-5, "swiglu rows 0–1"))
        }
    }

    static func rmsNorm(_ shape: BenchShape, batch: Int) -> BenchCase {
        let rows = batch * shape.context, dim = shape.dModel
        return BenchCase(name: "norm/rmsnorm/B\(batch)", detail: "[\(rows), \(dim)]", tokens: rows) {
            let memory = BenchMemory()
            let x = memory.matrix(rows: rows, columns: dim, seed: 8), w = memory.vector(dim, seed: 9)
            let y = memory.matrix(rows: rows, columns: dim), rstd = memory.vector(rows)
            let run = memory.timed { RMSNorm.forward(x: x, weight: w, y: y, rstd: rstd) }
            run()
            let expected = Reference.rmsNorm(x.array.map(Double.init), weight: w.map(Double.init), rows: rows, dim: dim)
            return Prepared(run: run, check: try check(y.array, expected, absolute: 1e-6, "rmsnorm"))
        }
    }

    static func rope(_ shape: BenchShape, batch: Int) -> BenchCase {
        let rows = batch * shape.context, width = shape.qkvWidth
        return BenchCase(name: "rope/q_and_k/B\(batch)", detail: "[\(rows), 2×\(shape.heads)×\(shape.headDim)] in [\(rows), \(width)]", tokens: rows) {
            let table = RoPETable(headDim: shape.headDim, maxPositions: shape.context, theta: shape.theta)
            let positions = (0..<rows).map { $0 % shape.context }
            let memory = BenchMemory()
            let rope = memory.rotary(table, positions: positions)
            // Q and K side by side in each row of the fused buffer: 2·H heads, rotated in one call.
            let qk = memory.matrix(rows: rows, columns: width, seed: 10).columns(0..<(2 * shape.dModel))
            let original = qk.array
            // Each run rotates Q and K in place again; rotations keep norms, so values stay bounded.
            let run = memory.timed { RoPE.apply(to: qk, rope) }
            run()
            let headPositions = positions.flatMap { Array(repeating: $0, count: 2 * shape.heads) }
            let expected = Reference.rope(original.map(Double.init), rows: rows * 2 * shape.heads, dim: shape.headDim,
                                          positions: headPositions, theta: shape.theta)
            let actual = qk.array
            let checked = try check(actual, expected, absolute: 2e-6, "rope")
            return Prepared(run: run, check: checked)
        }
    }

    static func selfAttention(_ shape: BenchShape, batch: Int) -> BenchCase {
        let dims = shape.attentionDims(batch: batch), rows = batch * shape.context, dim = shape.dModel
        return BenchCase(
            name: "attention/mhsa_full/B\(batch)", detail: "QKV, RoPE, SDPA, out proj",
            gemms: shape.linearGemm(rows: rows, inFeatures: dim, outFeatures: shape.qkvWidth) + shape.attentionGemms(batch: batch)
                + shape.linearGemm(rows: rows, inFeatures: dim, outFeatures: dim),
            tokens: rows
        ) {
            let memory = BenchMemory()
            let wq = TensorBuffer(dim * dim, seed: 12, scale: 0.05), wk = TensorBuffer(dim * dim, seed: 13, scale: 0.05)
            let wv = TensorBuffer(dim * dim, seed: 14, scale: 0.05)
            let x = memory.matrix(rows: rows, columns: dim, seed: 11), wo = memory.matrix(rows: dim, columns: dim, seed: 15, scale: 0.05)
            let wqkv = memory.matrix(copying: CausalSelfAttention.packQKV(q: wq.array, k: wk.array, v: wv.array),
                                     rows: shape.qkvWidth, columns: dim)
            let table = RoPETable(headDim: shape.headDim, maxPositions: shape.context, theta: shape.theta)
            let rope = memory.rotary(table, positions: (0..<rows).map { $0 % shape.context })
            let y = memory.matrix(rows: rows, columns: dim), qkv = memory.matrix(rows: rows, columns: shape.qkvWidth)
            let probs = memory.matrix(rows: batch * shape.heads * shape.context, columns: shape.context)
            let context = memory.matrix(rows: rows, columns: dim)
            let run = memory.timed {
                CausalSelfAttention.forward(x: x, qkvWeight: wqkv, outputWeight: wo, rope: rope, y: y, qkv: qkv,
                                            saved: .probabilities(probs), context: context, dims: dims)
            }
            run()
            // The reference over the first 32 positions of batch entry 0 (causal: later rows cannot change them).
            let t = 32
            let expected = Reference.causalSelfAttention(
                x.rows(0..<t).array.map(Double.init), wq: wq.array.map(Double.init), wk: wk.array.map(Double.init),
                wv: wv.array.map(Double.init), wo: wo.array.map(Double.init),
                batch: 1, length: t, dim: dim, heads: shape.heads, kvHeads: shape.heads, positions: Array(0..<t), theta: shape.theta)
            return Prepared(run: run, check: try check(y.rows(0..<t).array, expected, absolute: 1e-5, "mhsa first \(t) rows"))
        }
    }
}
