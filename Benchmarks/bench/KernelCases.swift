import Kernels
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
    static func referenceRows(_ x: TensorBuffer, _ w: TensorBuffer, rows: Int, inFeatures: Int, outFeatures: Int) -> [Double] {
        Reference.linear(x.array.prefix(rows * inFeatures).map(Double.init), weight: w.array.map(Double.init),
                         rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    static func linear(_ name: String, _ shape: BenchShape, batch: Int, outFeatures: Int) -> BenchCase {
        let rows = batch * shape.context, inFeatures = shape.dModel
        return BenchCase(
            name: "\(name)/B\(batch)", detail: "[\(rows), \(inFeatures)] → \(outFeatures)",
            gemms: shape.linearGemm(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures), tokens: rows
        ) {
            let x = TensorBuffer(rows * inFeatures, seed: 1), w = TensorBuffer(outFeatures * inFeatures, seed: 2, scale: 0.05)
            let y = TensorBuffer(rows * outFeatures)
            let run = { Linear.forward(x: x.readOnly, weight: w.readOnly, y: y.mutable, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures) }
            run()
            let checked = try check(Array(y.array.prefix(2 * outFeatures)), referenceRows(x, w, rows: 2, inFeatures: inFeatures, outFeatures: outFeatures),
                                    absolute: 1e-5, "\(name) rows 0–1")
            return Prepared(run: run, check: checked)
        }
    }

    static func attention(_ shape: BenchShape, batch: Int) -> BenchCase {
        let dims = shape.attentionDims(batch: batch), t = shape.context, width = shape.qkvWidth, d = shape.headDim
        return BenchCase(
            name: "attention/sdpa_causal/B\(batch)", detail: "B\(batch) H\(shape.heads) T\(t) d\(d)",
            gemms: shape.attentionGemms(batch: batch), tokens: batch * t
        ) {
            let qkv = TensorBuffer(batch * t * width, seed: 3), out = TensorBuffer(batch * t * shape.dModel)
            let probs = TensorBuffer(batch * shape.heads * t * t)
            let fused = HeadLayout(rowStride: width, batchStride: t * width)
            let run = {
                ScaledDotProductAttention.forward(
                    q: qkv.pointer, queryLayout: fused, k: qkv.pointer + shape.dModel, v: qkv.pointer + 2 * shape.dModel, keyLayout: fused,
                    out: out.pointer, outputLayout: HeadLayout(rowStride: shape.dModel, batchStride: t * shape.dModel),
                    probs: probs.mutable, dims: dims, mask: .causal(queryOffset: 0))
            }
            run()
            // Check the last head of the last batch entry against the plain-loop reference.
            let (b, h) = (batch - 1, shape.heads - 1)
            let values = qkv.array
            func column(_ offset: Int) -> [Double] {
                columns(values, firstRow: b * t, rows: t, width: width, from: offset, count: d).map(Double.init)
            }
            let expected = Reference.attention(q: column(h * d), k: column(shape.dModel + h * d), v: column(2 * shape.dModel + h * d),
                                               queries: t, keys: t, headDim: d, allowed: Reference.causalMask(t))
            let got = columns(out.array, firstRow: b * t, rows: t, width: shape.dModel, from: h * d, count: d)
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
            let x = TensorBuffer(rows * dim, seed: 4), w1 = TensorBuffer(hidden * dim, seed: 5, scale: 0.05), w3 = TensorBuffer(hidden * dim, seed: 6, scale: 0.05)
            let w2 = TensorBuffer(dim * hidden, seed: 7, scale: 0.05)
            let gateUpWeight = TensorBuffer(copying: SwiGLU.packGateUp(w1: w1.array, w3: w3.array, hidden: hidden, dim: dim))
            let y = TensorBuffer(rows * dim), gateUp = TensorBuffer(rows * 2 * hidden), gated = TensorBuffer(rows * hidden)
            let run = {
                SwiGLU.forward(x: x.readOnly, gateUpWeight: gateUpWeight.readOnly, downWeight: w2.readOnly, y: y.mutable,
                               gateUp: gateUp.mutable, gated: gated.mutable, rows: rows, dim: dim, hidden: hidden)
            }
            run()
            let expected = Reference.swiglu(x.array.prefix(2 * dim).map(Double.init), w1: w1.array.map(Double.init), w2: w2.array.map(Double.init),
                                            w3: w3.array.map(Double.init), rows: 2, dim: dim, hidden: hidden)
            return Prepared(run: run, check: try check(Array(y.array.prefix(2 * dim)), expected, absolute: 1e-5, "swiglu rows 0–1"))
        }
    }

    static func rmsNorm(_ shape: BenchShape, batch: Int) -> BenchCase {
        let rows = batch * shape.context, dim = shape.dModel
        return BenchCase(name: "norm/rmsnorm/B\(batch)", detail: "[\(rows), \(dim)]", tokens: rows) {
            let x = TensorBuffer(rows * dim, seed: 8), w = TensorBuffer(dim, seed: 9), y = TensorBuffer(rows * dim), rstd = TensorBuffer(rows)
            let run = { RMSNorm.forward(x: x.readOnly, weight: w.readOnly, y: y.mutable, rstd: rstd.mutable, rows: rows, dim: dim) }
            run()
            let expected = Reference.rmsNorm(x.array.map(Double.init), weight: w.array.map(Double.init), rows: rows, dim: dim)
            return Prepared(run: run, check: try check(y.array, expected, absolute: 1e-6, "rmsnorm"))
        }
    }

    static func rope(_ shape: BenchShape, batch: Int) -> BenchCase {
        let rows = batch * shape.context, width = shape.qkvWidth
        return BenchCase(name: "rope/q_and_k/B\(batch)", detail: "[\(rows), 2×\(shape.heads)×\(shape.headDim)] in [\(rows), \(width)]", tokens: rows) {
            let table = RoPETable(headDim: shape.headDim, maxPositions: shape.context, theta: shape.theta)
            let positions = (0..<rows).map { $0 % shape.context }
            let qkv = TensorBuffer(rows * width, seed: 10)
            let original = qkv.array
            // Each run rotates Q and K in place again; rotations keep norms, so values stay bounded.
            let run = {
                positions.withUnsafeBufferPointer { p in
                    RoPE.apply(qkv.pointer, rows: rows, rowStride: width, heads: 2 * shape.heads, positions: p, table: table)
                }
            }
            run()
            let rotated = qkv.array
            let qk = columns(original, firstRow: 0, rows: rows, width: width, from: 0, count: 2 * shape.dModel)
            let headPositions = positions.flatMap { Array(repeating: $0, count: 2 * shape.heads) }
            let expected = Reference.rope(qk.map(Double.init), rows: rows * 2 * shape.heads, dim: shape.headDim,
                                          positions: headPositions, theta: shape.theta)
            let actual = columns(rotated, firstRow: 0, rows: rows, width: width, from: 0, count: 2 * shape.dModel)
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
            let x = TensorBuffer(rows * dim, seed: 11)
            let wq = TensorBuffer(dim * dim, seed: 12, scale: 0.05), wk = TensorBuffer(dim * dim, seed: 13, scale: 0.05)
            let wv = TensorBuffer(dim * dim, seed: 14, scale: 0.05), wo = TensorBuffer(dim * dim, seed: 15, scale: 0.05)
            let wqkv = TensorBuffer(copying: CausalSelfAttention.packQKV(q: wq.array, k: wk.array, v: wv.array))
            let table = RoPETable(headDim: shape.headDim, maxPositions: shape.context, theta: shape.theta)
            let positions = (0..<rows).map { $0 % shape.context }
            let y = TensorBuffer(rows * dim), qkv = TensorBuffer(rows * shape.qkvWidth), probs = TensorBuffer(batch * shape.heads * shape.context * shape.context)
            let context = TensorBuffer(rows * dim)
            let run = {
                positions.withUnsafeBufferPointer { p in
                    CausalSelfAttention.forward(x: x.readOnly, qkvWeight: wqkv.readOnly, outputWeight: wo.readOnly, positions: p, rope: table,
                                                y: y.mutable, qkv: qkv.mutable, saved: .probabilities(probs.mutable), context: context.mutable, dims: dims)
                }
            }
            run()
            // The reference over the first 32 positions of batch entry 0 (causal: later rows cannot change them).
            let t = 32
            let expected = Reference.causalSelfAttention(
                x.array.prefix(t * dim).map(Double.init), wq: wq.array.map(Double.init), wk: wk.array.map(Double.init),
                wv: wv.array.map(Double.init), wo: wo.array.map(Double.init),
                batch: 1, length: t, dim: dim, heads: shape.heads, kvHeads: shape.heads, positions: Array(0..<t), theta: shape.theta)
            return Prepared(run: run, check: try check(Array(y.array.prefix(t * dim)), expected, absolute: 1e-5, "mhsa first \(t) rows"))
        }
    }
}
