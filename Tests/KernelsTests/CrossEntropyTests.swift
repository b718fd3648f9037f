import Kernels
import TestSupport
import Verification
import XCTest

final class CrossEntropyTests: XCTestCase {
    func run(_ logits: [Float], _ targets: [Int32], vocab: Int, scale: Float) -> (loss: Double, lossAlone: Double, gradient: [Float]) {
        let rows = targets.count
        let x = Matrix(logits, rows: rows, columns: vocab), gradient = Matrix(logits, rows: rows, columns: vocab)
        let targets = Pinned(targets), losses = unwritten(rows)
        let alone = CrossEntropy.forward(logits: x.view, targets: targets.elements, losses: losses.storage)
        let loss = CrossEntropy.forwardBackward(logits: gradient.view, targets: targets.elements, losses: losses.storage, gradientScale: scale)
        return (loss, alone, gradient.array)
    }

    func testLossAndGradientMatchTheDoubleFormula() {
        var rng = SeededGenerator(seed: 71)
        for (rows, vocab) in [(1, 1), (3, 17), (5, 37), (2, 300)] {
            let logits = rng.uniform(rows * vocab, scale: 4)
            let targets = (0..<rows).map { Int32($0 * 7 % vocab) }
            let (loss, lossAlone, gradient) = run(logits, targets, vocab: vocab, scale: 1 / Float(rows))
            let expected = ReferenceModel.crossEntropy(logits: logits.map(Double.init), targets: targets, vocab: vocab)
            XCTAssertEqual(loss, expected, accuracy: 1e-5, "loss [\(rows), \(vocab)]")
            XCTAssertEqual(lossAlone, expected, accuracy: 1e-5, "loss without gradient [\(rows), \(vocab)]")
            let numeric = finiteDifferenceGradient(logits.map(Double.init)) { ReferenceModel.crossEntropy(logits: $0, targets: targets, vocab: vocab) }
            assertClose(gradient, numeric, absolute: 1e-6, relative: 1e-4, "∂mean loss/∂logits [\(rows), \(vocab)]")
        }
    }

    func testHugeLogitsStayFinite() {
        let logits: [Float] = [1e4, -1e4, 0, 3e4, 3e4 - 1, -3e4]
        let (loss, _, gradient) = run(logits, [1, 2], vocab: 3, scale: 0.5)
        // Row 0: logsumexp = 1e4, target −1e4 → 2e4. Row 1: logsumexp ≈ 3e4 + log(1 + e⁻¹), target −3e4.
        XCTAssertEqual(loss, (2e4 + 6e4 + log(1 + exp(-1.0))) / 2, accuracy: 0.05)
        XCTAssertTrue(gradient.allSatisfy(\.isFinite))
        XCTAssertEqual(gradient[1], -0.5, accuracy: 1e-6, "the target's probability is 0: gradient −scale")
    }
}
