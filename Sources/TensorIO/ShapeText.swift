/// Shapes in error messages, kept short: a header may claim millions of dimensions.
public enum ShapeText {
    /// `[2, 3]`, or `[4611686018427387904, 2, 2, …] (3000000 dimensions)` past eight.
    public static func abbreviated(_ shape: [Int]) -> String {
        guard shape.count > 8 else { return "\(shape)" }
        return "[" + shape.prefix(4).map(String.init).joined(separator: ", ") + ", …] (\(shape.count) dimensions)"
    }

    /// The element count of `shape`, or nil when it overflows `Int`.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for dimension in shape {
            let (next, overflow) = count.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            count = next
        }
        return count
    }
}
