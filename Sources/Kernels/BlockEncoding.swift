/// Float32 matrices into ggml's block formats: the quantizer behind `lm quantize` and
/// `lm export gguf`. Each block is rounded by ggml's reference rules (`quantize_row_*_ref`), so
/// a file written here holds the blocks llama.cpp's own quantizer would write from the same
/// Float32 weights (up to its half-float rounding of the scale).
extension QuantizedMatrix.Format {
    /// The formats this engine can write: the 32-value ones. K-quants need llama.cpp's search
    /// over scales (and an importance matrix) to be worth their bits; they are read, not written.
    public var isWritable: Bool { blockValues == 32 }

    /// `values` (`[rows, columns]`, row-major; `columns` a multiple of 32) as blocks, row by
    /// row: `rows × columns / 32 × blockBytes` bytes.
    public func encode(_ values: UnsafePointer<Float>, rows: Int, columns: Int) -> [UInt8] {
        precondition(isWritable, "QuantizedMatrix.Format.encode: \(self) is read-only here")
        precondition(rows >= 0 && columns % 32 == 0, "QuantizedMatrix.Format.encode: [\(rows), \(columns)] needs whole blocks of 32 columns")
        let rowBytes = columns / 32 * blockBytes
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        out.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            Threading.parallelRanges(rows, costPerItem: 8 * columns) { range in
                for row in range {
                    for block in 0..<(columns / 32) {
                        encodeBlock(values + row * columns + block * 32, into: base + row * rowBytes + block * blockBytes)
                    }
                }
            }
        }
        return out
    }

    /// One block of 32 values (ggml's reference quantizers, rule for rule).
    private func encodeBlock(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt8>) {
        func half(_ value: Float, at offset: Int) {
            let bits = Float16(value).bitPattern
            (out[offset], out[offset + 1]) = (UInt8(bits & 0xFF), UInt8(bits >> 8))
        }
        /// Codes q0 (values 0…15) and q1 (16…31) of one byte, with their fifth bits for Q5.
        func pack(_ codes: borrowing InlineArray<32, Int>, at offset: Int, fifthBitsAt highOffset: Int?) {
            var high: UInt32 = 0
            for j in 0..<16 {
                out[offset + j] = UInt8(codes[j] & 0x0F) | UInt8(codes[j + 16] & 0x0F) << 4
                high |= UInt32((codes[j] >> 4) & 1) << UInt32(j) | UInt32((codes[j + 16] >> 4) & 1) << UInt32(j + 16)
            }
            if let highOffset { for k in 0..<4 { out[highOffset + k] = UInt8((high >> UInt32(8 * k)) & 0xFF) } }
        }
        switch self {
        case .q8_0:
            var largest: Float = 0
            for j in 0..<32 { largest = max(largest, abs(x[j])) }
            let d = largest / 127, inverse = d != 0 ? 1 / d : 0
            half(d, at: 0)
            for j in 0..<32 { out[2 + j] = UInt8(bitPattern: Int8((x[j] * inverse).rounded(.toNearestOrAwayFromZero))) }
        case .q4_0, .q5_0:
            // The value of largest magnitude, with its sign, maps to the most negative code.
            var largest: Float = 0, signed: Float = 0
            for j in 0..<32 where abs(x[j]) > largest { (largest, signed) = (abs(x[j]), x[j]) }
            let levels: Float = self == .q4_0 ? 8 : 16, top = self == .q4_0 ? 15 : 31
            let d = signed / -levels, inverse = d != 0 ? 1 / d : 0
            half(d, at: 0)
            // ggml truncates toward zero after adding levels + 0.5 (the sum is never negative).
            var codes = InlineArray<32, Int>(repeating: 0)
            for j in 0..<32 { codes[j] = min(top, Int(x[j] * inverse + levels + 0.5)) }
            pack(codes, at: self == .q4_0 ? 2 : 6, fifthBitsAt: self == .q4_0 ? nil : 2)
        case .q4_1, .q5_1:
            var low = Float.greatestFiniteMagnitude, high = -Float.greatestFiniteMagnitude
            for j in 0..<32 { (low, high) = (min(low, x[j]), max(high, x[j])) }
            let top = self == .q4_1 ? 15 : 31
            let d = (high - low) / Float(top), inverse = d != 0 ? 1 / d : 0
            half(d, at: 0)
            half(low, at: 2)
            var codes = InlineArray<32, Int>(repeating: 0)
            for j in 0..<32 { codes[j] = min(top, Int((x[j] - low) * inverse + 0.5)) }
            pack(codes, at: self == .q4_1 ? 4 : 8, fifthBitsAt: self == .q4_1 ? nil : 4)
        case .q4_K, .q5_K, .q6_K:
            preconditionFailure("unreachable: K-quants are not writable")
        }
    }
}
