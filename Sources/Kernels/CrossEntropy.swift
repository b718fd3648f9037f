import Foundation

/// Cross-entropy of next-token predictions from logits, numerically stable (log-sum-exp), with
/// its gradient fused and written in place of the logits, so that no second `[rows, vocab]`
/// buffer exists.
public enum CrossEntropy {
    /// A target that takes no part in the loss (a prompt's token when only answers are learned).
    public static let ignored: Int32 = -1

    /// logits: [rows, vocab], targets: [rows] (each in 0..<vocab, or ``ignored``) → losses: [rows],
    /// each `logsumexp(logits[r]) − logits[r, targets[r]]` (0 where ignored); returns their mean
    /// over the rows not ignored (accumulated in Double; 0 when every row is).
    public static func forward(
        logits: MatrixView, targets: UnsafeBufferPointer<Int32>, losses: UnsafeMutableBufferPointer<Float>
    ) -> Double {
        requireShapes(logits, targets, losses, kernel: "CrossEntropy.forward")
        guard logits.rows > 0 else { return 0 }
        let vocab = logits.columns, t = targets.baseAddress!, l = losses.baseAddress!
        Threading.parallelRanges(logits.rows, costPerItem: 20 * vocab) { range in
            for row in range {
                let xr = logits.pointer(row: row)
                l[row] = t[row] == ignored ? 0 : logSumExp(xr, vocab) - xr[Int(t[row])]
            }
        }
        return mean(losses, targets: targets)
    }

    /// The same losses, and `logits` overwritten by the gradient of `gradientScale · Σ losses`:
    /// `gradientScale · (softmax(logits[r]) − onehot(targets[r]))`. With `gradientScale = 1 / rows`
    /// that is the gradient of the mean loss. An ``ignored`` row's gradient is 0. Returns the mean
    /// loss over the rows not ignored.
    public static func forwardBackward(
        logits: MatrixView, targets: UnsafeBufferPointer<Int32>, losses: UnsafeMutableBufferPointer<Float>,
        gradientScale: Float
    ) -> Double {
        requireShapes(logits, targets, losses, kernel: "CrossEntropy.forwardBackward")
        guard logits.rows > 0 else { return 0 }
        let vocab = logits.columns, t = targets.baseAddress!, l = losses.baseAddress!
        Threading.parallelRanges(logits.rows, costPerItem: 30 * vocab) { range in
            for row in range {
                let xr = logits.pointer(row: row), target = Int(t[row])
                if t[row] == ignored {
                    l[row] = 0
                    xr.update(repeating: 0, count: vocab)
                    continue
                }
                let lse = logSumExp(xr, vocab)
                l[row] = lse - xr[target]
                // softmax = exp(x − lse), scaled, in one pass.
                let shift = SIMD16<Float>(repeating: lse), scale = SIMD16<Float>(repeating: gradientScale)
                var i = 0
                while i + 16 <= vocab {
                    VectorMath.store(VectorMath.exp(VectorMath.load(xr + i) - shift) * scale, xr + i)
                    i += 16
                }
                while i < vocab { xr[i] = VectorMath.exp(xr[i] - lse) * gradientScale; i += 1 }
                xr[target] -= gradientScale
            }
        }
        return mean(losses, targets: targets)
    }

    /// Rows whose target counts (not ``ignored``).
    public static func countedRows(_ targets: UnsafeBufferPointer<Int32>) -> Int {
        targets.reduce(0) { $0 + ($1 == ignored ? 0 : 1) }
    }

    /// log Σ exp(x[i]) over `count` values: the maximum, then the shifted exponentials' sum.
    @inline(__always)
    static func logSumExp(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        let maximum = VectorMath.maximum(x, count)
        let shift = SIMD16<Float>(repeating: maximum)
        var lanesSum = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            lanesSum += VectorMath.exp(VectorMath.load(x + i) - shift)
            i += 16
        }
        var total = lanesSum.sum()
        while i < count { total += VectorMath.exp(x[i] - maximum); i += 1 }
        return maximum + Foundation.log(total)
    }

    private static func mean(_ losses: UnsafeMutableBufferPointer<Float>, targets: UnsafeBufferPointer<Int32>) -> Double {
        var sum = 0.0
        for loss in losses { sum += Double(loss) }
        let counted = countedRows(targets)
        return counted == 0 ? 0 : sum / Double(counted)
    }

    private static func requireShapes(_ logits: MatrixView, _ targets: UnsafeBufferPointer<Int32>,
                                      _ losses: UnsafeMutableBufferPointer<Float>, kernel: String) {
        let (rows, vocab) = (logits.rows, logits.columns)
        requireShape(targets, [rows], kernel, "targets")
        requireShape(losses, [rows], kernel, "losses")
        for (row, target) in targets.enumerated() {
            precondition(target == ignored || (target >= 0 && Int(target) < vocab), "\(kernel): target \(target) at row \(row) is outside 0..<\(vocab)")
        }
    }
}
