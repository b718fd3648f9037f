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
}
