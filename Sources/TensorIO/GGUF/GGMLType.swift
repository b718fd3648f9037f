/// The tensor types of ggml (llama.cpp's tensor library) that a GGUF file can hold and this
/// package decodes, with their block layouts exactly as `ggml-common.h` defines them: a tensor's
/// rows are runs of blocks, each block `blockBytes` bytes for `blockSize` values.
///
/// The legacy formats hold 32 values a block with one Float16 scale `d` (and a minimum `m` for
/// the `_1` types); the K-quants hold 256 values in a super-block of eight or sixteen sub-blocks
/// whose scales are themselves quantized against the super-block's scales.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
    case q4_K = 12, q5_K = 13, q6_K = 14
    case bf16 = 30

    /// Values in one block.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: 32
        case .q4_K, .q5_K, .q6_K: 256
        }
    }

    /// Bytes of one block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0: 18   // d, 16 bytes of nibbles
        case .q4_1: 20   // d, m, 16 bytes of nibbles
        case .q5_0: 22   // d, 4 bytes of fifth bits, 16 bytes of nibbles
        case .q5_1: 24   // d, m, fifth bits, nibbles
        case .q8_0: 34   // d, 32 signed bytes
        case .q4_K: 144  // d, dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles
        case .q5_K: 176  // d, dmin, scales, 32 bytes of fifth bits, 128 bytes of nibbles
        case .q6_K: 210  // 128 bytes of low nibbles, 64 of high pairs, 16 signed scales, d
        }
    }

    /// The name llama.cpp gives the type ("Q4_K", "F16").
    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        }
    }

    /// Bytes of `count` values, or nil when `count` is not a whole number of blocks or the size
    /// overflows.
    public func byteCount(values count: Int) -> Int? {
        guard count >= 0, count % blockSize == 0 else { return nil }
        let (bytes, overflow) = (count / blockSize).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }

    /// Decodes `out.count` values (a whole number of blocks) from `blocks`, which must hold
    /// exactly their bytes: ggml's `dequantize_row_*` for this type.
    public func dequantize(_ blocks: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(byteCount(values: out.count) == blocks.count,
                     "GGMLType.dequantize: \(blocks.count) bytes of \(self) do not hold \(out.count) values")
        guard let source = blocks.baseAddress, let y = out.baseAddress else { return }
        let count = out.count
        switch self {
        case .f32:
            UnsafeMutableRawPointer(y).copyMemory(from: source, byteCount: count * 4)
        case .f16:
            for i in 0..<count { y[i] = Self.half(source, i * 2) }
        case .bf16:
            for i in 0..<count { y[i] = ElementDecoding.floatFromBFloat16(Self.u16(source, i * 2)) }
        default:
            for block in 0..<(count / blockSize) {
                dequantizeBlock(source + block * blockBytes, y + block * blockSize)
            }
        }
    }

    /// One block of a quantized type.
    private func dequantizeBlock(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        switch self {
        case .q4_0, .q4_1:
            // Low nibbles are values 0..<16 of the block, high nibbles 16..<32; Q4_0 is centred
            // on 8 ((q − 8)·d, as ggml rounds it), Q4_1 has a minimum (q·d + m).
            let d = Self.half(b, 0)
            for j in 0..<16 {
                let q = b.load(fromByteOffset: (self == .q4_0 ? 2 : 4) + j, as: UInt8.self)
                if self == .q4_0 {
                    y[j] = Float(Int(q & 0x0F) - 8) * d
                    y[j + 16] = Float(Int(q >> 4) - 8) * d
                } else {
                    let m = Self.half(b, 2)
                    y[j] = Float(q & 0x0F) * d + m
                    y[j + 16] = Float(q >> 4) * d + m
                }
            }
        case .q5_0, .q5_1:
            // The fifth bits of all 32 values in one little-endian word: bit j for value j.
            let d = Self.half(b, 0), offset = self == .q5_0 ? 2 : 4
            let high = UInt32(b.load(fromByteOffset: offset, as: UInt8.self)) | UInt32(b.load(fromByteOffset: offset + 1, as: UInt8.self)) << 8
                | UInt32(b.load(fromByteOffset: offset + 2, as: UInt8.self)) << 16 | UInt32(b.load(fromByteOffset: offset + 3, as: UInt8.self)) << 24
            for j in 0..<16 {
                let q = b.load(fromByteOffset: offset + 4 + j, as: UInt8.self)
                let low = UInt32(q & 0x0F) | ((high >> UInt32(j)) & 1) << 4
                let up = UInt32(q >> 4) | ((high >> UInt32(j + 16)) & 1) << 4
                if self == .q5_0 {
                    y[j] = Float(Int(low) - 16) * d
                    y[j + 16] = Float(Int(up) - 16) * d
                } else {
                    let m = Self.half(b, 2)
                    y[j] = Float(low) * d + m
                    y[j + 16] = Float(up) * d + m
                }
            }
        case .q8_0:
            let d = Self.half(b, 0)
            for j in 0..<32 { y[j] = Float(b.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
        case .q4_K, .q5_K:
            // Eight sub-blocks of 32, each with a 6-bit scale and minimum; 64 values per pass.
            let d = Self.half(b, 0), dmin = Self.half(b, 2)
            let scales = b + 4
            let highBits = self == .q5_K ? b + 16 : nil
            let quants = b + (self == .q5_K ? 48 : 16)
            for pass in 0..<4 {
                let (scale1, min1) = Self.scaleAndMin(2 * pass, scales), (scale2, min2) = Self.scaleAndMin(2 * pass + 1, scales)
                let (d1, m1, d2, m2) = (d * Float(scale1), dmin * Float(min1), d * Float(scale2), dmin * Float(min2))
                let out = y + 64 * pass, q = quants + 32 * pass
                for l in 0..<32 {
                    let byte = q.load(fromByteOffset: l, as: UInt8.self)
                    var low = Float(byte & 0x0F), up = Float(byte >> 4)
                    if let highBits {
                        let h = highBits.load(fromByteOffset: l, as: UInt8.self)
                        if h & (1 << (2 * pass)) != 0 { low += 16 }
                        if h & (2 << (2 * pass)) != 0 { up += 16 }
                    }
                    out[l] = d1 * low - m1
                    out[l + 32] = d2 * up - m2
                }
            }
        case .q6_K:
            // Sixteen sub-blocks of 16 with signed 8-bit scales; 6-bit values offset by 32.
            let d = Self.half(b, 208)
            for half in 0..<2 {
                let low = b + 64 * half, high = b + 128 + 32 * half, scale = b + 192 + 8 * half
                let out = y + 128 * half
                for l in 0..<32 {
                    let s = l / 16
                    let ql0 = low.load(fromByteOffset: l, as: UInt8.self), ql1 = low.load(fromByteOffset: l + 32, as: UInt8.self)
                    let qh = high.load(fromByteOffset: l, as: UInt8.self)
                    let q1 = Int(ql0 & 0x0F) | Int(qh & 3) << 4
                    let q2 = Int(ql1 & 0x0F) | Int((qh >> 2) & 3) << 4
                    let q3 = Int(ql0 >> 4) | Int((qh >> 4) & 3) << 4
                    let q4 = Int(ql1 >> 4) | Int((qh >> 6) & 3) << 4
                    out[l] = d * Float(scale.load(fromByteOffset: s, as: Int8.self)) * Float(q1 - 32)
                    out[l + 32] = d * Float(scale.load(fromByteOffset: s + 2, as: Int8.self)) * Float(q2 - 32)
                    out[l + 64] = d * Float(scale.load(fromByteOffset: s + 4, as: Int8.self)) * Float(q3 - 32)
                    out[l + 96] = d * Float(scale.load(fromByteOffset: s + 6, as: Int8.self)) * Float(q4 - 32)
                }
            }
        case .f32, .f16, .bf16:
            preconditionFailure("GGMLType: \(self) has no blocks")
        }
    }

    /// Sub-block `j`'s 6-bit scale and minimum from the twelve packed bytes (ggml's
    /// `get_scale_min_k4`): the first four of each directly, the last four split between the
    /// low nibbles of bytes 8…11 and the top two bits of bytes 0…7.
    static func scaleAndMin(_ j: Int, _ q: UnsafeRawPointer) -> (UInt8, UInt8) {
        func byte(_ i: Int) -> UInt8 { q.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 { return (byte(j) & 63, byte(j + 4) & 63) }
        return ((byte(j + 4) & 0x0F) | ((byte(j - 4) >> 6) << 4), (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4))
    }

    @inline(__always) static func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(p.load(fromByteOffset: offset, as: UInt8.self)) | UInt16(p.load(fromByteOffset: offset + 1, as: UInt8.self)) << 8
    }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float { ElementDecoding.floatFromHalf(u16(p, offset)) }
}
