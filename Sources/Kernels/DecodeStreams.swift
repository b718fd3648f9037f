import CVectorKernels

/// The attention of a batched decode step: one query row per sequence, each over the keys and
/// values of its own cache (of its own length), in one dispatch over (sequence, key/value head)
/// pairs. A sequence's result does not depend on the others: each pair runs the same code
/// whatever the batch, so streams that share a step get the bits they would get alone.
extension ScaledDotProductAttention {
    /// q: [S, H·d], row `s` the query of sequence `s`; `keys[s]`, `values[s]`: [Tk_s, Hkv·d]
    /// (its cache through its own position); out: [S, H·d]. `scores` holds `H · max Tk_s`
    /// floats per sequence, `[S, H, maxKeys]`.
    public static func decodeStreams(q: MatrixView, keys: [MatrixView], values: [MatrixView], out: MatrixView,
                                     scores: UnsafeMutablePointer<Float>, maxKeys: Int,
                                     heads: Int, kvHeads: Int, headDim d: Int, scale: Float? = nil) {
        let kernel = "ScaledDotProductAttention.decodeStreams"
        let streams = q.rows
        precondition(keys.count == streams && values.count == streams, "\(kernel): \(streams) queries, \(keys.count) key and \(values.count) value caches")
        requireShape(out, like: q, kernel, "out")
        precondition(q.columns >= heads * d && heads % kvHeads == 0, "\(kernel): q [\(q.columns)] cannot hold \(heads) heads of \(d)")
        for s in 0..<streams {
            precondition(keys[s].rows >= 1 && keys[s].rows <= maxKeys && keys[s].columns >= kvHeads * d, "\(kernel): stream \(s) keys \(keys[s].shape)")
            requireShape(values[s], like: keys[s], kernel, "values[\(s)]")
        }
        let group = heads / kvHeads, alpha = scale ?? 1 / Float(d).squareRoot()
        let fused = lm_decode_attention_available(d) == 1
        let work = keys.reduce(0) { $0 + $1.rows } / max(streams, 1)
        Threading.withSingleThreadedBLAS {
            Threading.parallelRanges(streams * kvHeads, costPerItem: 4 * group * work * d) { range in
                for pair in range {
                    let (s, kvHead) = pair.quotientAndRemainder(dividingBy: kvHeads)
                    let (k, v, tk) = (keys[s], values[s], keys[s].rows)
                    let firstHead = kvHead * group
                    let rowScores = scores + (s * heads + firstHead) * maxKeys
                    let query = UnsafePointer(q.pointer(row: s)) + firstHead * d, output = out.pointer(row: s) + firstHead * d
                    if fused {
                        lm_attention_scores(query, group, d, k.base + kvHead * d, k.rowStride, tk, alpha, rowScores, maxKeys)
                        for head in 0..<group { Softmax.softmaxRow(rowScores + head * maxKeys, rowScores + head * maxKeys, count: tk, visible: tk) }
                        lm_attention_values(rowScores, maxKeys, group, tk, v.base + kvHead * d, v.rowStride, d, output, d)
                    } else {
                        for head in 0..<group {
                            attendOneHead(q: query + head * d, queryStride: q.rowStride, k: k.base + kvHead * d, v: v.base + kvHead * d,
                                          keyStride: k.rowStride, out: output + head * d, outStride: out.rowStride,
                                          probs: rowScores + head * maxKeys, queries: 1, keys: tk, headDim: d, alpha: alpha,
                                          mask: .causal(queryOffset: tk - 1))
                        }
                    }
                }
            }
        }
    }
}
