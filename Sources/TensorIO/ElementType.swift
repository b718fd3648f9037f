/// Element types found in safetensors and NPY files.
public enum ElementType: String, Sendable, CaseIterable {
    case float64 = "F64", float32 = "F32", float16 = "F16", bfloat16 = "BF16"
    case int64 = "I64", int32 = "I32", int16 = "I16", int8 = "I8"
    case uint16 = "U16", uint8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float64, .float32, .float16, .bfloat16: return true
        default: return false
        }
    }
}

/// Decoding of little-endian raw elements into Swift values.
enum ElementDecoding {
    /// IEEE half → Float, exact (every half is representable), including subnormals, ±inf, NaN.
    static func floatFromHalf(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa · 2^−24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    /// bfloat16 is the top half of a Float.
    static func floatFromBFloat16(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Reads `count` elements of `type` at `source` as Float (integers converted by value).
    static func floats(from source: UnsafeRawPointer, type: ElementType, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            decode(from: source, type: type, into: out)
            initialized = count
        }
    }

    /// Decodes `out.count` elements of `type` at `source` into `out` as Float.
    static func decode(from source: UnsafeRawPointer, type: ElementType, into out: UnsafeMutableBufferPointer<Float>) {
        let count = out.count
        guard count > 0 else { return }
        switch type {
        case .float32:
            // A byte copy: the payload may not be 4-byte aligned.
            UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: source, byteCount: count * 4)
            #if _endian(big)
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: out[i].bitPattern)) }
            #endif
        case .float64:
            for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))) }
        case .float16:
            for i in 0..<count { out[i] = floatFromHalf(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
        case .bfloat16:
            for i in 0..<count { out[i] = floatFromBFloat16(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
        default:
            let integers = self.integers(from: source, type: type, count: count)
            for i in 0..<count { out[i] = Float(integers[i]) }
        }
    }

    /// Reads `count` integer (or bool) elements of `type` at `source` as Int.
    static func integers(from source: UnsafeRawPointer, type: ElementType, count: Int) -> [Int] {
        (0..<count).map { integer(from: source, type: type, at: $0) }
    }

    /// Element `i` of an integer (or bool) array.
    @inline(__always)
    static func integer(from source: UnsafeRawPointer, type: ElementType, at i: Int) -> Int {
        switch type {
        case .int64: return Int(Int64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)))
        case .int32: return Int(Int32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
        case .int16: return Int(Int16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)))
        case .uint16: return Int(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
        case .int8: return Int(source.load(fromByteOffset: i, as: Int8.self))
        case .uint8, .bool: return Int(source.load(fromByteOffset: i, as: UInt8.self))
        default: preconditionFailure("integer(from:) called with floating type \(type)")
        }
    }
}
