/// A frozen weight with low-rank adapters (LoRA, Hu et al. 2021): `W' = W + s · B · A`, applied
/// without merging, so the base stays in whatever form it has (block-quantized: QLoRA):
/// `y = x · Wᵀ + s · (x · Aᵀ) · Bᵀ`.
///
/// One weight may carry several adapters on disjoint row ranges of its output: the fused q | k | v
/// projection adapts q, k and v apart, as PEFT adapts `q_proj`, `k_proj` and `v_proj`. Their A
/// matrices (`[rank, in]` each) are stacked in one view `[parts · rank, in]`, so `x · Aᵀ` is one
/// GEMM for all of them; each B `[rows of its part, rank]` then writes its own columns of `y`.
///
/// In training the adapters' gradients accumulate into `gradients` (views laid out like the
/// adapters). Not for concurrent use: the low-rank rows `x · Aᵀ` go through a scratch buffer
/// (one model runs its layers one after another).
public final class LoRAWeight: LinearWeight, @unchecked Sendable {
    /// One adapted part of the output: rows `rows` of the base get `s · (x · A_partᵀ) · upᵀ`.
    public struct Part {
        public let rows: Range<Int>
        /// B: [rows.count, rank].
        public let up: MatrixView

        public init(rows: Range<Int>, up: MatrixView) { (self.rows, self.up) = (rows, up) }
    }

    /// Where the adapters' gradients accumulate: the stacked ∂A `[parts · rank, in]` and each
    /// part's ∂B, shaped like the parameters.
    public struct Gradients {
        public let down: MatrixView
        public let ups: [MatrixView]

        public init(down: MatrixView, ups: [MatrixView]) { (self.down, self.ups) = (down, ups) }
    }

    public let base: any LinearWeight
    /// Every part's A stacked: [parts · rank, in].
    public let down: MatrixView
    public let parts: [Part]
    public let rank: Int
    /// `alpha / rank` (or `alpha / √rank`, rank-stabilised).
    public let scale: Float
    public let gradients: Gradients?
    /// `x · Aᵀ` [rows, parts · rank], then its gradient, grown to the largest batch seen.
    private var lowRank = TensorBuffer(count: 0), dLowRank = TensorBuffer(count: 0)

    /// Dropout on the adapters' input (PEFT's `lora_dropout`): `y += s · B · A · drop(x)`, each
    /// element of `x` kept with probability `1 − probability` and scaled by `1 / (1 − probability)`.
    public struct Dropout: Sendable {
        public let probability: Float
        /// Tells this weight's draws from every other weight's.
        public let stream: UInt64

        public init(probability: Float, stream: UInt64) { (self.probability, self.stream) = (probability, stream) }
    }

    public let dropout: Dropout?
    /// Dropout draws only while this is set (a training step; evaluation leaves it nil): each
    /// round draws a fresh pattern, a function of (stream, round, row, column) alone, so the
    /// backward and a resumed run see the same elements dropped.
    public var dropoutRound: UInt64?
    /// The forward's dropped input [rows, in], which the backward reads again.
    private var droppedInput = TensorBuffer(count: 0)

    /// Checks that the parts lie inside the base's rows without overlapping, and the shapes.
    public init(base: any LinearWeight, down: MatrixView, parts: [Part], scale: Float, gradients: Gradients? = nil,
                dropout: Dropout? = nil) {
        precondition(!parts.isEmpty && down.rows % parts.count == 0, "LoRAWeight: A has \(down.rows) rows for \(parts.count) parts")
        let rank = down.rows / parts.count
        requireShape(down, down.rows, base.inFeatures, "LoRAWeight", "A")
        var end = 0
        for part in parts {
            precondition(part.rows.lowerBound >= end && part.rows.upperBound <= base.outFeatures,
                         "LoRAWeight: part rows \(part.rows) overlap another or leave 0..<\(base.outFeatures)")
            requireShape(part.up, part.rows.count, rank, "LoRAWeight", "B")
            end = part.rows.upperBound
        }
        if let gradients {
            requireShape(gradients.down, like: down, "LoRAWeight", "∂A")
            precondition(gradients.ups.count == parts.count, "LoRAWeight: \(gradients.ups.count) ∂B for \(parts.count) parts")
            for (dUp, part) in zip(gradients.ups, parts) { requireShape(dUp, like: part.up, "LoRAWeight", "∂B") }
        }
        (self.base, self.down, self.parts, self.rank, self.scale, self.gradients) = (base, down, parts, rank, scale, gradients)
        self.dropout = dropout.flatMap { $0.probability > 0 ? $0 : nil }
    }

    public var outFeatures: Int { base.outFeatures }
    public var inFeatures: Int { base.inFeatures }
    /// nil: the base is frozen; only the adapters train.
    public var dense: MatrixView? { nil }

    public func multiply(_ x: MatrixView, into y: MatrixView, accumulate: Bool) {
        base.multiply(x, into: y, accumulate: accumulate)
        addAdapterProduct(x, into: y)
    }

    /// y += s · (x · Aᵀ) · Bᵀ, part by part: the adapters' share of the product.
    public func addAdapterProduct(_ x: MatrixView, into y: MatrixView) {
        guard x.rows > 0 else { return }
        let u = lowRankRows(adapterInput(x, drawing: true))
        for (index, part) in parts.enumerated() {
            let columns = (index * rank)..<((index + 1) * rank), out = y.columns(part.rows)
            sgemm(transposeA: false, transposeB: true, m: x.rows, n: part.rows.count, k: rank, alpha: scale,
                  a: u.columns(columns).base, lda: u.rowStride, b: part.up.base, ldb: part.up.rowStride, beta: 1, c: out.base, ldc: out.rowStride)
        }
    }

    /// The base's backward (dx += dy · W), then the adapters': with u = x · Aᵀ (computed again,
    /// `rank` columns: cheaper than keeping it) and du = s · dy · B, ∂B += s · dyᵀ · u,
    /// ∂A += duᵀ · x, dx += du · A.
    public func backward(dy: MatrixView, x: MatrixView, dx: MatrixView?) {
        base.backward(dy: dy, x: x, dx: dx)
        let rows = dy.rows
        guard rows > 0 else { return }
        let input = adapterInput(x, drawing: false)
        let u = lowRankRows(input)
        if dLowRank.count < rows * down.rows { dLowRank = TensorBuffer(count: rows * down.rows) }
        let du = dLowRank.matrix(at: 0, rows: rows, columns: down.rows)
        for (index, part) in parts.enumerated() {
            let columns = (index * rank)..<((index + 1) * rank), dOut = dy.columns(part.rows)
            sgemm(transposeA: false, transposeB: false, m: rows, n: rank, k: part.rows.count, alpha: scale,
                  a: dOut.base, lda: dOut.rowStride, b: part.up.base, ldb: part.up.rowStride, beta: 0,
                  c: du.columns(columns).base, ldc: du.rowStride)
            if let gradients {
                let dUp = gradients.ups[index]
                sgemm(transposeA: true, transposeB: false, m: part.rows.count, n: rank, k: rows, alpha: scale,
                      a: dOut.base, lda: dOut.rowStride, b: u.columns(columns).base, ldb: u.rowStride, beta: 1, c: dUp.base, ldc: dUp.rowStride)
            }
        }
        if let gradients {
            sgemm(transposeA: true, transposeB: false, m: down.rows, n: down.columns, k: rows,
                  a: du.base, lda: du.rowStride, b: input.base, ldb: input.rowStride, beta: 1, c: gradients.down.base, ldc: gradients.down.rowStride)
        }
        guard let dx else { return }
        guard isDropping, let dropout else {
            sgemm(transposeA: false, transposeB: false, m: rows, n: down.columns, k: down.rows,
                  a: du.base, lda: du.rowStride, b: down.base, ldb: down.rowStride, beta: 1, c: dx.base, ldc: dx.rowStride)
            return
        }
        // Through the dropout: du · A into the dropped input's buffer (no longer needed), then
        // added where the same elements were kept, scaled as they were.
        let through = droppedInput.matrix(at: 0, rows: rows, columns: down.columns)
        sgemm(transposeA: false, transposeB: false, m: rows, n: down.columns, k: down.rows,
              a: du.base, lda: du.rowStride, b: down.base, ldb: down.rowStride, beta: 0, c: through.base, ldc: through.rowStride)
        let keep = 1 / (1 - dropout.probability)
        for row in 0..<rows {
            var draws = dropDraws(row: row)
            let source = through.pointer(row: row), target = dx.pointer(row: row)
            for column in 0..<down.columns where draws.keeps() { target[column] += source[column] * keep }
        }
    }

    private var isDropping: Bool { dropout != nil && dropoutRound != nil }

    /// What the adapters read: `x`, or in a training round with dropout `drop(x)`, drawn in the
    /// forward (`drawing`) and read again in the backward.
    private func adapterInput(_ x: MatrixView, drawing: Bool) -> MatrixView {
        guard isDropping, let dropout else { return x }
        let dropped = droppedInput.count >= x.rows * x.columns ? droppedInput : TensorBuffer(count: x.rows * x.columns)
        droppedInput = dropped
        let view = dropped.matrix(at: 0, rows: x.rows, columns: x.columns)
        guard drawing else { return view }
        let keep = 1 / (1 - dropout.probability)
        for row in 0..<x.rows {
            var draws = dropDraws(row: row)
            let source = x.pointer(row: row), target = view.pointer(row: row)
            for column in 0..<x.columns { target[column] = draws.keeps() ? source[column] * keep : 0 }
        }
        return view
    }

    /// The keep-or-drop draws of row `row` in this round, column by column.
    private func dropDraws(row: Int) -> DropDraws {
        let dropout = dropout!, round = dropoutRound!
        let seed = dropout.stream &* 0x9E37_79B9_7F4A_7C15 ^ round &* 0xBF58_476D_1CE4_E5B9 ^ UInt64(row) &* 0x94D0_49BB_1331_11EB
        return DropDraws(generator: SeededGenerator(seed: seed), threshold: UInt64(Double(dropout.probability) * 0x1_0000_0000))
    }

    private struct DropDraws {
        var generator: SeededGenerator
        let threshold: UInt64
        /// Whether the next element is kept (probability 1 − p).
        mutating func keeps() -> Bool { generator.next() >> 32 >= threshold }
    }

    /// u = x · Aᵀ: [rows, parts · rank], in the scratch.
    private func lowRankRows(_ x: MatrixView) -> MatrixView {
        if lowRank.count < x.rows * down.rows { lowRank = TensorBuffer(count: x.rows * down.rows) }
        let u = lowRank.matrix(at: 0, rows: x.rows, columns: down.rows)
        sgemm(transposeA: false, transposeB: true, m: x.rows, n: down.rows, k: down.columns,
              a: x.base, lda: x.rowStride, b: down.base, ldb: down.rowStride, beta: 0, c: u.base, ldc: u.rowStride)
        return u
    }
}
