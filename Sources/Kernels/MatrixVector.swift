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
        Threading.parallelRanges(rows, costPerItem: 2 * columns) { range in
            lm_matvec_rows(w, ldw, x, y, range.lowerBound, range.upperBound, columns, alpha, beta)
        }
    }
}
