import Foundation

/// The float types the references run in: `Float` to compare with the kernels bit-for-bit in
/// spirit, `Double` to serve as ground truth and for finite differences.
public protocol ReferenceFloat: BinaryFloatingPoint, Sendable {
    static func exp(_ x: Self) -> Self
    static func cos(_ x: Self) -> Self
    static func sin(_ x: Self) -> Self
    static func pow(_ x: Self, _ y: Self) -> Self
    static func tanh(_ x: Self) -> Self
}

extension Float: ReferenceFloat {
    public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
    public static func cos(_ x: Float) -> Float { Foundation.cos(x) }
    public static func sin(_ x: Float) -> Float { Foundation.sin(x) }
    public static func pow(_ x: Float, _ y: Float) -> Float { Foundation.pow(x, y) }
    public static func tanh(_ x: Float) -> Float { Foundation.tanh(x) }
}

extension Double: ReferenceFloat {
    public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    public static func cos(_ x: Double) -> Double { Foundation.cos(x) }
    public static func sin(_ x: Double) -> Double { Foundation.sin(x) }
    public static func pow(_ x: Double, _ y: Double) -> Double { Foundation.pow(x, y) }
    public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
}
