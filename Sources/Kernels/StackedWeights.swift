/// Several weight matrices stacked by rows as one `LinearWeight` (`[Σ rows, inFeatures]`): the
/// fused q/k/v or gate/up projection of a model whose parts are stored apart, each in its own
/// format (a Q4_K_M file mixes Q4_K and Q6_K, some parts may be Float32). Each part writes its
/// own columns of `y`.
public struct StackedWeights: LinearWeight {
    public let parts: [any LinearWeight]
    public let outFeatures: Int
    public let inFeatures: Int

    /// Every part must have `inFeatures` columns.
    public init(_ parts: [any LinearWeight]) {
        precondition(!parts.isEmpty, "StackedWeights: no parts")
        precondition(parts.allSatisfy { $0.inFeatures == parts[0].inFeatures }, "StackedWeights: parts of different widths")
        self.parts = parts
        outFeatures = parts.reduce(0) { $0 + $1.outFeatures }
        inFeatures = parts[0].inFeatures
    }

    /// nil: the parts are not one Float32 block (training needs a dense model).
    public var dense: MatrixView? { nil }

    public func multiply(_ x: MatrixView, into y: MatrixView, accumulate: Bool) {
        var start = 0
        for part in parts {
            part.multiply(x, into: y.columns(start..<(start + part.outFeatures)), accumulate: accumulate)
            start += part.outFeatures
        }
    }
}
