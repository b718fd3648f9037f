import CVectorKernels

/// A weight multiplied so that each output row depends on its own input row only, bit for bit:
/// the product of a batched decode step, where the rows are different sequences (a server's
/// streams) and a sequence's logits must not change with the company it keeps.
///
/// Block-quantized matrices (alone or stacked) decode each weight row once for all the input
/// rows (``/Kernels/QuantizedMatrix/multiplyBatchInvariant(_:into:accumulate:)``), so the weights are read from
/// memory once per step whatever the batch; Float32 matrices are one `cblas_sgemm` per input
/// row (OpenBLAS's blocking changes with the row count, and so do its sums), reading the weights
/// once per row.
public struct BatchInvariantWeight: LinearWeight {
    public let base: any LinearWeight

    public init(_ base: any LinearWeight) { self.base = base }

    public var outFeatures: Int { base.outFeatures }
    public var inFeatures: Int { base.inFeatures }
    public var dense: MatrixView? { base.dense }

    public func backward(dy: MatrixView, x: MatrixView, dx: MatrixView?) { base.backward(dy: dy, x: x, dx: dx) }

    public func multiply(_ x: MatrixView, into y: MatrixView, accumulate: Bool) {
        guard x.rows > 0 else { return }
        switch base {
        case let matrix as QuantizedMatrix:
            matrix.multiplyBatchInvariant(x, into: y, accumulate: accumulate)
        case let stacked as StackedWeights:
            stacked.multiplyBatchInvariant(x, into: y, accumulate: accumulate)
        case let adapted as LoRAWeight:
            // The base batch-invariantly, then each row's adapter product alone.
            BatchInvariantWeight(adapted.base).multiply(x, into: y, accumulate: accumulate)
            for row in 0..<x.rows { adapted.addAdapterProduct(x.rows(row..<(row + 1)), into: y.rows(row..<(row + 1))) }
        default:
            for row in 0..<x.rows { base.multiply(x.rows(row..<(row + 1)), into: y.rows(row..<(row + 1)), accumulate: accumulate) }
        }
    }
}

extension QuantizedMatrix {
    /// y = x · Wᵀ for a few rows (x: [B, columns] → y: [B, rows]), each weight row decoded to
    /// Float32 once, a chunk at a time in L1, for all B rows. Row `b` of y is the same bits
    /// whatever the other rows of x, B or the thread count (but not the same bits as the one-row
    /// product of ``multiply(_:into:accumulate:)``, which multiplies inside the blocks).
    public func multiplyBatchInvariant(_ x: MatrixView, into y: MatrixView, accumulate: Bool) {
        requireShape(y, x.rows, rows, "QuantizedMatrix.multiplyBatchInvariant", "y")
        Threading.parallelRanges(rows, costPerItem: columns * x.rows) { range in
            batchRowProducts(x, into: y, rows: range, accumulate: accumulate)
        }
    }

    /// Rows `rows` of ``multiplyBatchInvariant(_:into:accumulate:)``, on the calling thread,
    /// written to columns `rows` of `y`.
    func batchRowProducts(_ x: MatrixView, into y: MatrixView, rows: Range<Int>, accumulate: Bool) {
        var first = 0
        let most = Int(LM_BATCH_MAX)
        while first < x.rows {
            let count = min(most, x.rows - first)
            lm_quantized_rows_batched(format.rawValue, blocks, rowBytes, x.pointer(row: first), x.rowStride, count,
                                      y.pointer(row: first), y.rowStride, rows.lowerBound, rows.upperBound, columns,
                                      accumulate ? 1 : 0)
            first += count
        }
    }
}

extension StackedWeights {
    /// ``BatchInvariantWeight``'s product: one dispatch over the rows of every part when all are
    /// block-quantized, else part by part.
    func multiplyBatchInvariant(_ x: MatrixView, into y: MatrixView, accumulate: Bool) {
        guard let blocks = quantizedParts else {
            var start = 0
            for part in parts {
                BatchInvariantWeight(part).multiply(x, into: y.columns(start..<(start + part.outFeatures)), accumulate: accumulate)
                start += part.outFeatures
            }
            return
        }
        Threading.parallelRanges(outFeatures, costPerItem: inFeatures * x.rows) { range in
            for part in blocks {
                let first = max(range.lowerBound, part.start), end = min(range.upperBound, part.start + part.matrix.rows)
                guard first < end else { continue }
                part.matrix.batchRowProducts(x, into: y.columns(part.start..<(part.start + part.matrix.rows)),
                                             rows: (first - part.start)..<(end - part.start), accumulate: accumulate)
            }
        }
    }
}
