import CVectorKernels
import Foundation

/// A copy of a ``QuantizedMatrix``'s blocks with eight rows side by side, the layout the 8-bit
/// products read (`CVectorKernels/quantized_interleaved.c`): one 32-byte load holds four codes of
/// each of eight rows, one integer dot product (`vpdpbusd` on AVX-512 VNNI, `vpmaddubsw` +
/// `vpmaddwd` on AVX2) multiplies them by four activation codes, and the eight rows' scales are
/// one load. With 8-bit activations this streams a Q8_0 head at the machine's bandwidth (25–28
/// GB/s on either path where the block-at-a-time loop reached 9).
///
/// Made for every format but Q5_K, on a CPU with AVX2 + FMA + F16C (``QuantizedProductPath``).
/// The K-quants have no other 8-bit product: this is what lets them round activations.
/// It costs a second copy of the matrix's bytes (the file's blocks still serve prompts, the
/// embedding lookup and the rows of a last partial group) and one pass over them at load.
final class InterleavedBlocks: @unchecked Sendable {
    /// Whether matrices build the copy when their products start quantizing activations: true
    /// unless `LM_INTERLEAVE=0` is set (to measure the block-at-a-time loop on the same machine).
    nonisolated(unsafe) static var allowed = ProcessInfo.processInfo.environment["LM_INTERLEAVE"] != "0"

    /// Whether matrices of `format` get an interleaved copy on this CPU.
    static func available(_ format: QuantizedMatrix.Format) -> Bool {
        allowed && QuantizedProductPath.interleaved != Int32(LM_INTERLEAVED_NONE) && lm_interleaved_available(format.rawValue) == 1
    }

    let pointer: UnsafeMutableRawPointer
    let byteCount: Int

    /// The interleaved copy of `[rows, columns]` blocks of `format`, or nil where this CPU or the
    /// format has no interleaved product (or ``allowed`` is false).
    init?(format: QuantizedMatrix.Format, rows: Int, columns: Int, blocks: UnsafeRawPointer, rowBytes: Int) {
        guard Self.available(format) else { return nil }
        byteCount = lm_interleaved_bytes(format.rawValue, rows, columns)
        pointer = .allocate(byteCount: max(byteCount, 64), alignment: 64)
        let (pointer, groups) = (pointer, rows / 8)
        Threading.parallelRanges(groups, costPerItem: 8 * rowBytes) { range in
            lm_interleave_rows(format.rawValue, blocks, rowBytes, columns, range.lowerBound, range.upperBound, pointer)
        }
    }

    deinit { pointer.deallocate() }
}
