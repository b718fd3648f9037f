import CVectorKernels
import Foundation

/// The instructions the quantized products take on this CPU, named for the bench and
/// `lm generate` (the same file runs at very different speeds on different paths).
///
/// With Float32 activations every product decodes blocks in registers: AVX2 + FMA + F16C, or the
/// portable loop. With 8-bit activations (``QuantizedMatrix/quantizesActivations``) the products
/// read an interleaved copy of the blocks (``InterleavedBlocks``) on AVX-512 VNNI or AVX2; both
/// give the same bits, only the speed differs.
public enum QuantizedProductPath {
    /// The interleaved products' instruction path: the best this CPU runs, unless `LM_INTERLEAVE`
    /// asks for less (`avx2`: the AVX2 path on an AVX-512 machine, to measure the other class of
    /// CPU side by side; `0`: no interleaved copy, the block-at-a-time 8-bit loop).
    public static var interleaved: Int32 {
        _ = environmentApplied
        return lm_interleaved_path()
    }

    /// `LM_INTERLEAVE=avx2` applied, once, before the first product asks for the path.
    private static let environmentApplied: Bool = {
        guard ProcessInfo.processInfo.environment["LM_INTERLEAVE"] == "avx2" else { return false }
        return lm_interleaved_use_path(Int32(LM_INTERLEAVED_AVX2)) == 1
    }()

    /// The interleaved path's name: "AVX-512 VNNI", "AVX2", or nil where there is none.
    public static var interleavedName: String? {
        switch interleaved {
        case Int32(LM_INTERLEAVED_AVX512_VNNI): return "AVX-512 VNNI"
        case Int32(LM_INTERLEAVED_AVX2): return "AVX2"
        default: return nil
        }
    }

    /// What the products of a quantized model run, e.g. "8-bit activations, AVX-512 VNNI
    /// interleaved rows" or "Float32 activations, AVX2 blocks".
    public static func description(eightBitActivations: Bool) -> String {
        let blocks = lm_quantized_available() == 1 ? "AVX2 blocks" : "portable blocks"
        guard eightBitActivations else { return "Float32 activations, \(blocks)" }
        if InterleavedBlocks.allowed, let name = interleavedName { return "8-bit activations, \(name) interleaved rows" }
        return "8-bit activations, \(blocks) (K-quants with Float32 activations)"
    }
}
