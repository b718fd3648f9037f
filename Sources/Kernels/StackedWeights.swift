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
        var start = 0, blocks: [(matrix: QuantizedMatrix, start: Int)] = []
        for part in parts {
            if let matrix = part as? QuantizedMatrix { blocks.append((matrix, start)) }
            start += part.outFeatures
        }
        quantizedParts = blocks.count == parts.count ? blocks : nil
    }

    /// The parts with the first row of each, when every part is block-quantized.
    let quantizedParts: [(matrix: QuantizedMatrix, start: Int)]?

    /// nil: the parts are not one Float32 block (training needs a dense model).
    public var dense: MatrixView? { nil }

    /// Each part's backward on its columns of `dy`.
    public func backward(dy: MatrixView, x: MatrixView, dx: MatrixView?) {
        var start = 0
        for part in parts {
            part.backward(dy: dy.columns(start..<(start + part.outFeatures)), x: x, dx: dx)
            start += part.outFeatures
        }
    }

    public func multiply(_ x: MatrixView, into y: MatrixView, accumulate: Bool) {
        if x.rows == 1 && !accumulate, let blocks = quantizedParts {
            // A decode step: one dispatch over the rows of all the parts (a thread's range may
            // span two), instead of one per part: the threads meet once, not once a part.
            let xs = UnsafePointer(x.base), ys = y.base
            for part in blocks { part.matrix.prepareRowProducts(xs) }
            Threading.parallelRanges(outFeatures, costPerItem: inFeatures) { range in
                for part in blocks {
                    let first = max(range.lowerBound, part.start), end = min(range.upperBound, part.start + part.matrix.rows)
                    guard first < end else { continue }
                    part.matrix.rowProducts(xs, into: ys + part.start, rows: (first - part.start)..<(end - part.start))
                }
            }
            return
        }
        var start = 0
        for part in parts {
            part.multiply(x, into: y.columns(start..<(start + part.outFeatures)), accumulate: accumulate)
            start += part.outFeatures
        }
    }
}
