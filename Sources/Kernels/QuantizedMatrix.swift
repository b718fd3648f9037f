import CVectorKernels

/// A weight matrix `[rows, columns]` kept in one of ggml's block formats (as a GGUF file stores
/// it), multiplied without a Float32 copy: a matrix–vector product decodes each block in
/// registers (AVX2+FMA+F16C, or a portable loop), so decode reads 4.5–8.5 bits per weight
/// instead of 32. Several input rows (a prompt) are multiplied by decoding a tile of weight rows
/// to Float32 and calling `cblas_sgemm`, so prompts stay on BLAS.
///
/// The blocks are not owned: `blocks` must stay valid (a memory-mapped file the caller keeps).
/// Not for concurrent use: the tiles are decoded into a ``Scratch`` that the matrices of one
/// model share (they run one after another).
public final class QuantizedMatrix: LinearWeight, @unchecked Sendable {
    /// The block formats implemented, with ggml's type numbers: blocks of 32 values, and the
    /// K-quants' super-blocks of 256.
    public enum Format: Int32, Sendable, CaseIterable {
        case q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q4_K = 12, q5_K = 13, q6_K = 14

        /// Bytes per block.
        public var blockBytes: Int { lm_quantized_block_bytes(rawValue) }
        /// Values per block: 32, or 256 for a K-quant.
        public var blockValues: Int { lm_quantized_block_values(rawValue) }
        /// Whether one-row products can round the activations to 8 bits on this CPU
        /// (``QuantizedMatrix/multiplyQuantizingActivations(_:into:)``): with AVX2 + FMA + F16C,
        /// the 32-value formats, Q4_K and Q6_K (these two through their interleaved product).
        public var takesEightBitActivations: Bool { lm_quantized_q8_available(rawValue) == 1 || InterleavedBlocks.available(self) }
    }

    public let format: Format
    public let rows: Int
    public let columns: Int
    public let blocks: UnsafeRawPointer
    /// Bytes of one row of blocks.
    public let rowBytes: Int
    /// Where the many-row path decodes its tiles of weight rows: shared by a model's matrices.
    public final class Scratch: @unchecked Sendable {
        fileprivate var buffer = TensorBuffer(count: 0)
        /// A prompt's activation rows rounded to 8 bits, for the interleaved GEMM.
        fileprivate let eightBitRows = EightBitRows()
        public init() {}
        fileprivate func pointer(count: Int) -> UnsafeMutablePointer<Float> {
            if buffer.count < count { buffer = TensorBuffer(count: count) }
            return buffer.pointer
        }
    }
    private let scratch: Scratch
    /// One output row, for a matrix–vector product added to `y`.
    private let rowScratch: TensorBuffer
    /// Weight rows per tile: GEMMs this wide run near cblas_sgemm's full rate.
    static let tileRows = 512

    /// `blocks` holds `rows` rows of `columns / format.blockValues` blocks each; `columns` must
    /// be a multiple of the block's values.
    public init(format: Format, rows: Int, columns: Int, blocks: UnsafeRawPointer, scratch: Scratch = Scratch()) {
        let values = format.blockValues
        precondition(rows >= 1 && columns >= values && columns % values == 0,
                     "QuantizedMatrix: [\(rows), \(columns)] needs whole blocks of \(values) columns")
        (self.format, self.rows, self.columns, self.blocks) = (format, rows, columns, blocks)
        rowBytes = columns / values * format.blockBytes
        self.scratch = scratch
        rowScratch = TensorBuffer(count: rows)
    }

    /// Whether one-row products round the activations to 8 bits first
    /// (``multiplyQuantizingActivations(_:into:)``: faster, not exact); false by default. On a
    /// CPU with AVX2 (or AVX-512 VNNI), turning it on also copies the blocks eight rows side by
    /// side (``interleavedByteCount``), the layout of the fastest 8-bit products.
    public var quantizesActivations = false {
        didSet { if quantizesActivations { interleaveBlocks() } }
    }

    /// The interleaved copy the 8-bit products read, when this CPU and format have one.
    private var interleaved: InterleavedBlocks?

    private func interleaveBlocks() {
        if interleaved == nil { interleaved = InterleavedBlocks(format: format, rows: rows, columns: columns, blocks: blocks, rowBytes: rowBytes) }
    }

    /// Bytes of the interleaved copy of the blocks (0 when there is none): memory the 8-bit
    /// products cost beside the file's blocks.
    public var interleavedByteCount: Int { interleaved?.byteCount ?? 0 }

    public var outFeatures: Int { rows }
    public var inFeatures: Int { columns }
    public var dense: MatrixView? { nil }

    /// Bytes of all the blocks.
    public var byteCount: Int { rows * rowBytes }

    public func multiply(_ x: MatrixView, into y: MatrixView, accumulate: Bool) {
        guard x.rows > 0 else { return }
        if x.rows == 1 {
            // Accumulating (a residual added in place) goes through a row of scratch.
            let xs = UnsafePointer(x.base), ys = accumulate ? rowScratch.pointer : y.base
            prepareRowProducts(xs)
            Threading.parallelRanges(rows, costPerItem: columns) { range in rowProducts(xs, into: ys, rows: range) }
            if accumulate { for r in 0..<rows { y.base[r] += ys[r] } }
            return
        }
        if quantizesActivations, let interleaved, lm_interleaved_gemm_available(format.rawValue) == 1 {
            eightBitProduct(x, into: y, accumulate: accumulate, interleaved: interleaved)
            return
        }
        // Tiles of weight rows decoded to Float32, each one GEMM into its columns of y.
        forEachDecodedTile { rows, tile in
            sgemm(transposeA: false, transposeB: true, m: x.rows, n: rows.count, k: columns,
                  a: x.base, lda: x.rowStride, b: tile, ldb: columns,
                  beta: accumulate ? 1 : 0, c: y.base + rows.lowerBound, ldc: y.rowStride)
        }
    }

    /// dx += dy · W with W decoded a tile of rows at a time (the input's gradient through a frozen
    /// quantized weight: QLoRA), each tile one GEMM: dx += dy[:, tile] · W[tile].
    public func backward(dy: MatrixView, x: MatrixView, dx: MatrixView?) {
        guard let dx, dy.rows > 0 else { return }
        forEachDecodedTile { rows, tile in
            sgemm(transposeA: false, transposeB: false, m: dy.rows, n: columns, k: rows.count,
                  a: dy.base + rows.lowerBound, lda: dy.rowStride, b: tile, ldb: columns, beta: 1, c: dx.base, ldc: dx.rowStride)
        }
    }

    /// Every tile of ``tileRows`` weight rows, in order, decoded to Float32 ([rows.count, columns]
    /// in the shared scratch) and handed to `body`.
    private func forEachDecodedTile(_ body: (_ rows: Range<Int>, _ tile: UnsafeMutablePointer<Float>) -> Void) {
        let tile = scratch.pointer(count: min(Self.tileRows, rows) * columns)
        var start = 0
        while start < rows {
            let range = start..<min(start + Self.tileRows, rows)
            decodeRows(range, into: tile)
            body(range, tile)
            start = range.upperBound
        }
    }

    /// Rows `range` decoded to Float32 into `out` ([range.count, columns]), split over the threads.
    private func decodeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let (format, blocks, rowBytes, columns, start) = (format.rawValue, blocks, rowBytes, columns, range.lowerBound)
        Threading.parallelRanges(range.count, costPerItem: 4 * columns) { part in
            lm_quantized_dequantize_rows(format, blocks + (start + part.lowerBound) * rowBytes, rowBytes,
                                         out + part.lowerBound * columns, columns, 0, part.count, columns)
        }
    }

    /// Several rows with 8-bit activations, as the decode step takes them: each row rounded once,
    /// then integer products eight weight rows × eight activation rows at a time (four on AVX2),
    /// above the rate of Float32 `sgemm`, with no tile decoded to Float32.
    private func eightBitProduct(_ x: MatrixView, into y: MatrixView, accumulate: Bool, interleaved: InterleavedBlocks) {
        let activations = scratch.eightBitRows
        activations.quantize(x, columns: columns)
        let (format, blocks, rowBytes, rows, columns, batch) = (format.rawValue, blocks, rowBytes, rows, columns, x.rows)
        let (codes, scales, sums, codeSums, out, ldy) = (activations.codes, activations.scales, activations.sums, activations.codeSums, y.base, y.rowStride)
        let groups = rows / 8
        let product = { (range: Range<Int>) in
            lm_interleaved_gemm_q8(format, interleaved.pointer, blocks, rowBytes, rows, codes, scales, sums, codeSums, batch,
                                   out, ldy, range.lowerBound, range.upperBound, columns, accumulate ? 1 : 0)
        }
        if groups == 0 { product(0..<0) } else { Threading.parallelRanges(groups, costPerItem: 8 * batch * columns / 4, product) }
    }

    /// Readies the one-row products of `x` ([columns]) by ``rowProducts(_:into:rows:)``: with
    /// ``quantizesActivations``, rounds `x` to 8 bits once for all of them.
    public func prepareRowProducts(_ x: UnsafePointer<Float>) {
        guard quantizesActivations && format.takesEightBitActivations else { return }
        activations.quantize(x)
    }

    /// `y[r] = W[r] · x` for the rows `rows`, on the calling thread (callers split the rows
    /// across threads: one dispatch can cover several matrices, ``StackedWeights``). `x` must
    /// have been given to ``prepareRowProducts(_:)`` first.
    public func rowProducts(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        if quantizesActivations && format.takesEightBitActivations {
            eightBitRowProducts(into: y, rows: rows)
        } else {
            lm_quantized_rows(format.rawValue, blocks, rowBytes, x, y, rows.lowerBound, rows.upperBound, columns)
        }
    }

    /// Rows `rows` of the product with the activations last quantized into ``activations``.
    private func eightBitRowProducts(into y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        if let interleaved {
            lm_interleaved_rows_q8(format.rawValue, interleaved.pointer, blocks, rowBytes, self.rows, activations.codes, activations.scales,
                                   activations.sums, y, rows.lowerBound, rows.upperBound, columns)
            return
        }
        lm_quantized_rows_q8(format.rawValue, blocks, rowBytes, activations.codes, activations.scales, activations.sums,
                             y, rows.lowerBound, rows.upperBound, columns)
    }

    /// The 8-bit codes of the last `x` prepared, with their per-block scales and exact sums.
    private final class EightBitActivations {
        let codes: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>
        let columns: Int
        init(columns: Int) {
            self.columns = columns
            codes = .allocate(capacity: columns)
            scales = .allocate(capacity: columns / 32)
            sums = .allocate(capacity: columns / 32)
        }
        func quantize(_ x: UnsafePointer<Float>) { lm_quantize_activations(x, columns, codes, scales, sums) }
        deinit {
            codes.deallocate()
            scales.deallocate()
            sums.deallocate()
        }
    }
    private lazy var activations = EightBitActivations(columns: columns)

    /// A prompt's rows rounded to 8 bits per block of 32 (``lm_quantize_activation_rows``), in
    /// buffers grown to the largest prompt seen.
    fileprivate final class EightBitRows {
        private(set) var codes = UnsafeMutablePointer<Int8>.allocate(capacity: 0)
        private(set) var scales = UnsafeMutablePointer<Float>.allocate(capacity: 0)
        private(set) var sums = UnsafeMutablePointer<Float>.allocate(capacity: 0)
        private(set) var codeSums = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
        private var capacity = 0

        /// `x` ([batch, columns]) rounded.
        func quantize(_ x: MatrixView, columns: Int) {
            let count = x.rows * columns
            if count > capacity {
                deallocate()
                codes = .allocate(capacity: count)
                scales = .allocate(capacity: count / 32)
                sums = .allocate(capacity: count / 32)
                codeSums = .allocate(capacity: count / 16)
                capacity = count
            }
            lm_quantize_activation_rows(x.base, x.rowStride, x.rows, columns, codes, scales, sums, codeSums)
        }

        private func deallocate() {
            codes.deallocate()
            scales.deallocate()
            sums.deallocate()
            codeSums.deallocate()
        }

        deinit { deallocate() }
    }

    /// `y = W · x` for one row `x` ([columns]) quantized to 8 bits per block of 32 first, as
    /// ggml does: integer dot products, so faster, but the result moves by the rounding of `x`
    /// (about 1/254 of each block's largest |x|). False (nothing computed) when this CPU lacks
    /// AVX2+FMA+F16C, or the format is Q5_K (``Format/takesEightBitActivations``).
    /// The other design of the decode step, measured beside ``multiply(_:into:accumulate:)``.
    public func multiplyQuantizingActivations(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) -> Bool {
        guard format.takesEightBitActivations else { return false }
        interleaveBlocks()
        activations.quantize(x)
        Threading.parallelRanges(rows, costPerItem: columns / 2) { range in eightBitRowProducts(into: y, rows: range) }
        return true
    }

    /// Row `row` decoded to Float32 into `out` (`columns` values): an embedding lookup.
    public func decodeRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(row >= 0 && row < rows, "QuantizedMatrix.decodeRow: row \(row) outside 0..<\(rows)")
        lm_quantized_dequantize_rows(format.rawValue, blocks + row * rowBytes, rowBytes, out, columns, 0, 1, columns)
    }
}
