import Foundation

/// Small vectorised helpers shared by the row kernels. Float sums are accumulated in SIMD lanes,
/// which both vectorises and reduces rounding error versus one serial accumulator.
@usableFromInline
enum VectorMath {
    /// Σ x[i]² over `count` elements.
    @inlinable
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var lanes = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            lanes += v * v
            i += 16
        }
        var total = lanes.sum()
        while i < count { total += x[i] * x[i]; i += 1 }
        return total
    }

    /// Σ x[i] · y[i] over `count` elements.
    @inlinable
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ count: Int) -> Float {
        var lanes = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            let b = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
            lanes += a * b
            i += 16
        }
        var total = lanes.sum()
        while i < count { total += x[i] * y[i]; i += 1 }
        return total
    }

    /// The logistic function 1 / (1 + e^(−x)), written so neither branch overflows.
    @inlinable @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    /// e^x in sixteen lanes (Cephes' single-precision scheme): x = n·ln2 + r with |r| ≤ ln2/2,
    /// e^r from a degree-6 polynomial, 2^n assembled in the exponent bits. Relative error about
    /// 1e-7 (two ulps) across the clamp range; inputs are clamped to [−87.3, 88], where e^x
    /// stays a normal Float, so −∞ and huge negatives give ≈1e-38 rather than NaN.
    @inlinable @inline(__always)
    static func exp(_ value: SIMD16<Float>) -> SIMD16<Float> {
        // replacing(where:) compiles to vector blends; pointwiseMin/Max does not (10× slower).
        let low = SIMD16<Float>(repeating: -87.33654), high = SIMD16<Float>(repeating: 88.0)
        var x = value.replacing(with: low, where: value .< low)
        x.replace(with: high, where: x .> high)
        // Adding and removing 1.5·2²³ rounds to the nearest integer in the FPU's own mode.
        let magic = SIMD16<Float>(repeating: 12_582_912)
        let biased = x * 1.442_695_04 + magic
        let n = biased - magic
        // ln2 split in two so n·ln2 is subtracted without rounding error.
        let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p = SIMD16<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let er = p * r * r + r + 1
        // n + 1.5·2²³ puts n in the low mantissa bits; shift them into the exponent field.
        let shifted = unsafeBitCast(biased, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((shifted &+ 127) &<< 23, to: SIMD16<Float>.self)
        return er * scale
    }

    /// The same scheme as the SIMD version, for tails shorter than a vector.
    @inlinable @inline(__always)
    static func exp(_ x: Float) -> Float {
        exp(SIMD16<Float>(repeating: x))[0]
    }

    /// σ(x) in sixteen lanes; the clamp inside `exp` keeps 1 + e^(−x) finite.
    @inlinable @inline(__always)
    static func sigmoid(_ x: SIMD16<Float>) -> SIMD16<Float> {
        1 / (1 + exp(-x))
    }

    /// The largest of `count` values (−∞ for none), sixteen lanes at a time.
    @inlinable @inline(__always)
    static func maximum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var lanes = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= count {
            lanes = maximum(lanes, load(x + i))
            i += 16
        }
        var result = lanes.max()
        while i < count { result = max(result, x[i]); i += 1 }
        return result
    }

    /// Lane-wise maximum, as a vector blend (see `exp`).
    @inlinable @inline(__always)
    static func maximum(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        a.replacing(with: b, where: b .> a)
    }

    /// Loads sixteen Floats from any alignment.
    @inlinable @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(pointer).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Stores sixteen Floats at any alignment.
    @inlinable @inline(__always)
    static func store(_ value: SIMD16<Float>, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD16<Float>.self)
    }

    /// output[j] = exp(input[j] − shift) for j < count, sixteen lanes at a time; returns their
    /// sum. `input` and `output` may be the same memory.
    @inline(__always)
    static func exponentiate(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, count: Int, minus shift: Float) -> Float {
        let lanesShift = SIMD16<Float>(repeating: shift)
        var lanes = SIMD16<Float>()
        var j = 0
        while j + 16 <= count {
            let e = exp(load(input + j) - lanesShift)
            store(e, output + j)
            lanes += e
            j += 16
        }
        var sum = lanes.sum()
        while j < count {
            let e = exp(input[j] - shift)
            output[j] = e
            sum += e
            j += 1
        }
        return sum
    }
}
