import COpenBLAS
import CVectorKernels
import Foundation
import Synchronization

/// `y = alpha · W · x + beta · y` for one input row: the decode step's product, where each
/// weight is read once per token and speed is the rate at which the weights stream from memory.
///
/// On CPUs with AVX2 and FMA this runs our own kernel (`CVectorKernels`), with the rows split
/// over ``Threading/count`` threads; elsewhere, or when ``useHandKernel`` is off, it is
/// `cblas_sgemv`. Why the hand kernel exists: OpenBLAS's row-major sgemv streams a DRAM-resident
/// matrix more slowly (README, "Decode speed"; the bench's `matvec/` cases). `sgemm` sends every `m == 1`,
/// `W`-transposed product here, so `Linear` and the model need no second API.
public enum MatrixVector {
    /// Whether this CPU has the instructions the hand kernel needs.
    public static let handKernelAvailable = lm_matvec_available() == 1

    private static let enabled = Atomic<Bool>(
        handKernelAvailable && ProcessInfo.processInfo.environment["LM_MATVEC"] != "blas")

    /// On by default where available; `LM_MATVEC=blas` or setting this to false sends every
    /// product to `cblas_sgemv` instead (for comparison; the bench does both).
    public static var useHandKernel: Bool {
        get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue && handKernelAvailable, ordering: .relaxed) }
    }

    /// The hand kernel's two loops. One row at a time keeps one sequential stream per thread,
    /// which the hardware prefetcher follows best when the matrix comes from DRAM; four rows at a
    /// time share each load of `x` between four rows, which wins when the matrix is in cache.
    public enum RowKernel: Sendable, Equatable { case oneRow, fourRows }

    /// Matrices of at most this many bytes count as cache-resident (the four-row loop); larger
    /// ones stream from DRAM (the one-row loop). The bench's `matvec/` cases time both sides.
    public static let cacheResidentBytes = 8 << 20

    /// The loop the hand kernel runs for a `[rows, columns]` matrix.
    public static func rowKernel(rows: Int, columns: Int) -> RowKernel {
        rows * columns * MemoryLayout<Float>.size > cacheResidentBytes ? .oneRow : .fourRows
    }

    /// w: [rows, columns] with row stride `ldw`, x: [columns], y: [rows].
    public static func multiply(
        w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rows: Int, columns: Int, alpha: Float = 1, beta: Float = 0
    ) {
        precondition(rows >= 0 && columns >= 0 && ldw >= columns, "MatrixVector.multiply: rows \(rows), columns \(columns), ldw \(ldw)")
        guard rows > 0 else { return }
        guard useHandKernel else {
            Threading.ensureConfigured()
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(columns), alpha, w, Int32(ldw), x, 1, beta, y, 1)
            return
        }
        let streaming: Int32 = rowKernel(rows: rows, columns: columns) == .oneRow ? 1 : 0
        // Blocks of four rows, so that each thread's share runs the four-row kernel to the end.
        let blocks = (rows + 3) / 4
        Threading.parallelRanges(blocks, costPerItem: 8 * columns) { range in
            let start = range.lowerBound * 4, end = min(rows, range.upperBound * 4)
            lm_matvec_rows(w, ldw, x, y, start, end, columns, alpha, beta, streaming)
        }
    }
}
