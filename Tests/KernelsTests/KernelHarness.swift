import ReferenceKernels
import Kernels

/// Array-in, array-out wrappers so tests read as comparisons rather than pointer plumbing.
enum Run {
    static func rmsNorm(_ x: [Float], weight: [Float], rows: Int, dim: Int, epsilon: Float = 1e-5) -> (y: [Float], rstd: [Float]) {
        var y = [Float](repeating: .nan, count: rows * dim), rstd = [Float](repeating: .nan, count: rows)
        x.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { y in
                    rstd.withUnsafeMutableBufferPointer { rstd in
                        RMSNorm.forward(x: x, weight: w, y: y, rstd: rstd, rows: rows, dim: dim, epsilon: epsilon)
                    }
                }
            }
        }
        return (y, rstd)
    }

    static func softmax(_ x: [Float], rows: Int, cols: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in Softmax.forward(x: x, y: y, rows: rows, cols: cols) }
        }
        return y
    }

    static func silu(_ x: [Float]) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { y in SiLU.forward(x: x, y: y) } }
        return y
    }

    static func rope(_ x: [Float], rows: Int, heads: Int, positions: [Int], table: RoPETable) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                positions.withUnsafeBufferPointer { p in
                    RoPE.forward(x: x, y: y, rows: rows, heads: heads, positions: p, table: table)
                }
            }
        }
        return y
    }

    /// q: [B, Tq, H·d], k, v: [B, Tk, Hkv·d] (contiguous) → out: [B, Tq, H·d], probs: [B, H, Tq, Tk].
    static func attention(q: [Float], k: [Float], v: [Float], dims: AttentionDims, mask: [Bool]? = nil,
                          causalOffset: Int? = nil) -> (out: [Float], probs: [Float]) {
        let qWidth = dims.heads * dims.headDim, kvWidth = dims.kvHeads * dims.headDim
        var out = [Float](repeating: .nan, count: dims.batch * dims.queryLength * qWidth)
        var probs = [Float](repeating: .nan, count: dims.batch * dims.heads * dims.queryLength * dims.keyLength)
        let allowed = mask ?? []
        q.withUnsafeBufferPointer { q in
            k.withUnsafeBufferPointer { k in
                v.withUnsafeBufferPointer { v in
                    out.withUnsafeMutableBufferPointer { out in
                        probs.withUnsafeMutableBufferPointer { probs in
                            allowed.withUnsafeBufferPointer { allowed in
                                let maskValue: AttentionMask
                                if let causalOffset { maskValue = .causal(queryOffset: causalOffset) }
                                else if mask != nil { maskValue = .allowed(allowed) }
                                else { maskValue = .none }
                                ScaledDotProductAttention.forward(
                                    q: q.baseAddress!, queryLayout: HeadLayout(rowStride: qWidth, batchStride: dims.queryLength * qWidth),
                                    k: k.baseAddress!, v: v.baseAddress!, keyLayout: HeadLayout(rowStride: kvWidth, batchStride: dims.keyLength * kvWidth),
                                    out: out.baseAddress!, outputLayout: HeadLayout(rowStride: qWidth, batchStride: dims.queryLength * qWidth),
                                    probs: probs, dims: dims, mask: maskValue)
                            }
                        }
                    }
                }
            }
        }
        return (out, probs)
    }

    static func causalSelfAttention(_ x: [Float], wq: [Float], wk: [Float], wv: [Float], wo: [Float],
                                    dims: AttentionDims, positions: [Int], theta: Double) -> [Float] {
        let rows = dims.batch * dims.queryLength, modelDim = dims.heads * dims.headDim
        let qkvWeight = CausalSelfAttention.packQKV(q: wq, k: wk, v: wv)
        let table = RoPETable(headDim: dims.headDim, maxPositions: (positions.max() ?? 0) + 1, theta: theta)
        var y = [Float](repeating: .nan, count: rows * modelDim)
        var qkv = [Float](repeating: .nan, count: rows * CausalSelfAttention.qkvWidth(dims))
        var probs = [Float](repeating: .nan, count: dims.batch * dims.heads * dims.queryLength * dims.keyLength)
        var context = [Float](repeating: .nan, count: rows * modelDim)
        x.withUnsafeBufferPointer { x in
            qkvWeight.withUnsafeBufferPointer { wqkv in
                wo.withUnsafeBufferPointer { wo in
                    positions.withUnsafeBufferPointer { positions in
                        y.withUnsafeMutableBufferPointer { y in
                            qkv.withUnsafeMutableBufferPointer { qkv in
                                probs.withUnsafeMutableBufferPointer { probs in
                                    context.withUnsafeMutableBufferPointer { context in
                                        CausalSelfAttention.forward(
                                            x: x, qkvWeight: wqkv, outputWeight: wo, positions: positions, rope: table,
                                            y: y, qkv: qkv, saved: .probabilities(probs), context: context, dims: dims)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    static func swiglu(_ x: [Float], w1: [Float], w2: [Float], w3: [Float], rows: Int, dim: Int, hidden: Int) -> [Float] {
        let gateUpWeight = SwiGLU.packGateUp(w1: w1, w3: w3, hidden: hidden, dim: dim)
        var y = [Float](repeating: .nan, count: rows * dim)
        var gateUp = [Float](repeating: .nan, count: rows * 2 * hidden)
        var gated = [Float](repeating: .nan, count: rows * hidden)
        x.withUnsafeBufferPointer { x in
            gateUpWeight.withUnsafeBufferPointer { w13 in
                w2.withUnsafeBufferPointer { w2 in
                    y.withUnsafeMutableBufferPointer { y in
                        gateUp.withUnsafeMutableBufferPointer { gateUp in
                            gated.withUnsafeMutableBufferPointer { gated in
                                SwiGLU.forward(x: x, gateUpWeight: w13, downWeight: w2, y: y, gateUp: gateUp, gated: gated,
                                               rows: rows, dim: dim, hidden: hidden)
                            }
                        }
                    }
                }
            }
        }
        return y
    }
}

/// Head `head` (columns head·d..<(head+1)·d) of batch entry `batch` in a [B, rows, width] array.
func headSlice<T: BinaryFloatingPoint>(_ x: [T], batch: Int, rows: Int, width: Int, head: Int, headDim d: Int) -> [Double] {
    var slice: [Double] = []
    slice.reserveCapacity(rows * d)
    for t in 0..<rows {
        let start: Int = (batch * rows + t) * width + head * d
        slice += x[start..<(start + d)].map { Double($0) }
    }
    return slice
}

extension Run {
    /// Attention over [B, T, H·d] layouts in Double, head by head through the reference.
    static func referenceAttention(_ q: [Double], _ k: [Double], _ v: [Double], dims: AttentionDims, causal: Bool) -> [Double] {
        let (tq, tk, d) = (dims.queryLength, dims.keyLength, dims.headDim)
        let (qWidth, kvWidth) = (dims.heads * d, dims.kvHeads * d)
        var out = [Double](repeating: 0, count: dims.batch * tq * qWidth)
        var allowed: [Bool]?
        if causal { allowed = (0..<(tq * tk)).map { (index: Int) -> Bool in index % tk <= (tk - tq) + index / tk } }
        for b in 0..<dims.batch {
            for h in 0..<dims.heads {
                let g = h / (dims.heads / dims.kvHeads)
                func slice(_ x: [Double], rows: Int, width: Int, head: Int) -> [Double] {
                    headSlice(x, batch: b, rows: rows, width: width, head: head, headDim: d)
                }
                let o = Reference.attention(q: slice(q, rows: tq, width: qWidth, head: h), k: slice(k, rows: tk, width: kvWidth, head: g),
                                            v: slice(v, rows: tk, width: kvWidth, head: g), queries: tq, keys: tk, headDim: d, allowed: allowed)
                for t in 0..<tq {
                    for c in 0..<d {
                        let index: Int = (b * tq + t) * qWidth + h * d + c
                        out[index] = o[t * d + c]
                    }
                }
            }
        }
        return out
    }

    /// Runs the attention backward on contiguous [B, T, heads·d] operands: dQ, dK, dV from zeros.
    static func attentionBackward(q: [Float], k: [Float], v: [Float], probs: [Float], dOut: [Float], dims: AttentionDims,
                           mask: AttentionMask) -> (dQ: [Float], dK: [Float], dV: [Float]) {
        let (tq, tk, d) = (dims.queryLength, dims.keyLength, dims.headDim)
        let (qWidth, kvWidth) = (dims.heads * d, dims.kvHeads * d)
        var dQ = [Float](repeating: 0, count: q.count), dK = [Float](repeating: 0, count: k.count), dV = [Float](repeating: 0, count: v.count)
        var scratch = [Float](repeating: 0, count: probs.count)
        let queryLayout = HeadLayout(rowStride: qWidth, batchStride: tq * qWidth)
        let keyLayout = HeadLayout(rowStride: kvWidth, batchStride: tk * kvWidth)
        q.withUnsafeBufferPointer { qb in k.withUnsafeBufferPointer { kb in v.withUnsafeBufferPointer { vb in
            probs.withUnsafeBufferPointer { pb in dOut.withUnsafeBufferPointer { ob in
                dQ.withUnsafeMutableBufferPointer { dq in dK.withUnsafeMutableBufferPointer { dk in dV.withUnsafeMutableBufferPointer { dv in
                    scratch.withUnsafeMutableBufferPointer { sb in
                        ScaledDotProductAttention.backward(
                            q: qb.baseAddress!, queryLayout: queryLayout, k: kb.baseAddress!, v: vb.baseAddress!, keyLayout: keyLayout,
                            probs: pb, dOut: ob.baseAddress!, outputLayout: queryLayout,
                            dQ: dq.baseAddress!, dK: dk.baseAddress!, dV: dv.baseAddress!, scratch: sb, dims: dims, mask: mask)
                    }
                } } }
            } }
        } } }
        return (dQ, dK, dV)
    }
}
