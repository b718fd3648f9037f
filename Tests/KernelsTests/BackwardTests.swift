import Kernels
import ReferenceKernels
import TestSupport
import XCTest

/// Backward kernels against central finite differences of the Double references.
final class BackwardTests: XCTestCase {
    func checkAttentionBackward(dims: AttentionDims, causal: Bool, seed: UInt64, margin: Int = 0) {
        var rng = SeededGenerator(seed: seed)
        let (tq, tk, d) = (dims.queryLength, dims.keyLength, dims.headDim)
        let (qWidth, kvWidth) = (dims.heads * d, dims.kvHeads * d)
        let q = rng.uniform(dims.batch * tq * qWidth), k = rng.uniform(dims.batch * tk * kvWidth)
        let v = rng.uniform(dims.batch * tk * kvWidth), dOut = rng.uniform(dims.batch * tq * qWidth)
        let (_, probs) = Run.attention(q: q, k: k, v: v, dims: dims, causalOffset: causal ? tk - tq : nil, margin: margin)
        let (dQ, dK, dV) = Run.attentionBackward(q: q, k: k, v: v, probs: probs, dOut: dOut, dims: dims,
                                                 mask: causal ? .causal(queryOffset: tk - tq) : .none, margin: margin)
        let (qd, kd, vd, od) = (widened(q), widened(k), widened(v), widened(dOut))
        let loss = { (q: [Double], k: [Double], v: [Double]) in
            zip(Run.referenceAttention(q, k, v, dims: dims, causal: causal), od).map(*).reduce(0, +)
        }
        let label = "\(dims) causal \(causal) margin \(margin)"
        assertClose(dQ, finiteDifferenceGradient(qd) { loss($0, kd, vd) }, absolute: 1e-5, relative: 1e-4, "dQ \(label)")
        assertClose(dK, finiteDifferenceGradient(kd) { loss(qd, $0, vd) }, absolute: 1e-5, relative: 1e-4, "dK \(label)")
        assertClose(dV, finiteDifferenceGradient(vd) { loss(qd, kd, $0) }, absolute: 1e-5, relative: 1e-4, "dV \(label)")
    }

    /// The causal backward skips masked blocks; over several blocks (T = 150 with 64-row blocks,
    /// a cache offset, grouped-query heads) it must equal the full-square backward on the same probs.
    func testCausalBlockedBackwardEqualsTheFullSquare() {
        var rng = SeededGenerator(seed: 81)
        for (tq, tk) in [(150, 150), (70, 133)] {
            let dims = AttentionDims(batch: 2, queryLength: tq, keyLength: tk, heads: 4, kvHeads: 2, headDim: 8)
            let (qWidth, kvWidth) = (dims.heads * 8, dims.kvHeads * 8)
            let q = rng.uniform(2 * tq * qWidth), k = rng.uniform(2 * tk * kvWidth), v = rng.uniform(2 * tk * kvWidth)
            let dOut = rng.uniform(2 * tq * qWidth)
            let (_, probs) = Run.attention(q: q, k: k, v: v, dims: dims, causalOffset: tk - tq)
            var results: [[Float]] = []
            for mask in [AttentionMask.none, .causal(queryOffset: tk - tq)] {
                let (dQ, dK, dV) = Run.attentionBackward(q: q, k: k, v: v, probs: probs, dOut: dOut, dims: dims, mask: mask)
                results.append(dQ + dK + dV)
            }
            assertClose(results[1], results[0].map(Double.init), absolute: reductionTolerance(tk, scale: 4), "blocked vs full square, Tq \(tq) Tk \(tk)")
        }
    }

    func testAttentionBackwardMatchesFiniteDifferences() {
        checkAttentionBackward(dims: AttentionDims(batch: 2, queryLength: 5, keyLength: 5, heads: 2, kvHeads: 2, headDim: 4), causal: true, seed: 50)
        checkAttentionBackward(dims: AttentionDims(batch: 1, queryLength: 3, keyLength: 7, heads: 4, kvHeads: 2, headDim: 3), causal: false, seed: 51)
        checkAttentionBackward(dims: AttentionDims(batch: 2, queryLength: 1, keyLength: 1, heads: 3, kvHeads: 1, headDim: 2), causal: true, seed: 52)
        checkAttentionBackward(dims: AttentionDims(batch: 1, queryLength: 70, keyLength: 70, heads: 1, kvHeads: 1, headDim: 2), causal: true, seed: 53)
    }

    /// The same with every operand and gradient a strided view inside wider rows (NaN margins,
    /// which the backward must neither read nor write), grouped-query heads, a cache offset.
    func testAttentionBackwardOnStridedOperandsMatchesFiniteDifferences() {
        checkAttentionBackward(dims: AttentionDims(batch: 2, queryLength: 5, keyLength: 5, heads: 2, kvHeads: 1, headDim: 4), causal: true, seed: 55, margin: 3)
        checkAttentionBackward(dims: AttentionDims(batch: 2, queryLength: 3, keyLength: 7, heads: 4, kvHeads: 2, headDim: 3), causal: true, seed: 56, margin: 1)
        checkAttentionBackward(dims: AttentionDims(batch: 1, queryLength: 3, keyLength: 7, heads: 4, kvHeads: 2, headDim: 3), causal: false, seed: 57, margin: 2)
    }

    func testSwiGLUBackwardMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 54)
        let (rows, dim, hidden) = (3, 5, 7)
        let x = rng.uniform(rows * dim), w1 = rng.uniform(hidden * dim), w2 = rng.uniform(dim * hidden), w3 = rng.uniform(hidden * dim)
        let dy = rng.uniform(rows * dim)
        let xm = Matrix(x, rows: rows, columns: dim), dym = Matrix(dy, rows: rows, columns: dim)
        let gateUpWeight = Matrix(SwiGLU.packGateUp(w1: w1, w3: w3, hidden: hidden, dim: dim), rows: 2 * hidden, columns: dim)
        let downWeight = Matrix(w2, rows: dim, columns: hidden)
        let y = Matrix(rows: rows, columns: dim, repeating: 0)
        let gateUp = Matrix(rows: rows, columns: 2 * hidden, repeating: 0), gated = Matrix(rows: rows, columns: hidden, repeating: 0)
        let dGated = Matrix(rows: rows, columns: hidden, repeating: 0), dGateUp = Matrix(rows: rows, columns: 2 * hidden, repeating: 0)
        let dxm = Matrix(rows: rows, columns: dim, repeating: 0)
        let dGateUpWeight = Matrix(rows: 2 * hidden, columns: dim, repeating: 0), dDownWeight = Matrix(rows: dim, columns: hidden, repeating: 0)
        SwiGLU.forward(x: xm.view, gateUpWeight: gateUpWeight.view, downWeight: downWeight.view, y: y.view, gateUp: gateUp.view, gated: gated.view)
        SwiGLU.backward(dy: dym.view, x: xm.view, gateUpWeight: gateUpWeight.view, downWeight: downWeight.view,
                        gateUp: gateUp.view, gated: gated.view, dGated: dGated.view, dGateUp: dGateUp.view,
                        dx: dxm.view, dGateUpWeight: dGateUpWeight.view, dDownWeight: dDownWeight.view)
        let (dx, dW13, dW2) = (dxm.array, dGateUpWeight.array, dDownWeight.array)
        let (xd, w1d, w2d, w3d, dyd) = (widened(x), widened(w1), widened(w2), widened(w3), widened(dy))
        let loss = { (x: [Double], w1: [Double], w2: [Double], w3: [Double]) in
            zip(Reference.swiglu(x, w1: w1, w2: w2, w3: w3, rows: rows, dim: dim, hidden: hidden), dyd).map(*).reduce(0, +)
        }
        assertClose(dx, finiteDifferenceGradient(xd) { loss($0, w1d, w2d, w3d) }, absolute: 1e-5, relative: 1e-4, "swiglu dx")
        assertClose(Array(dW13[0..<(hidden * dim)]), finiteDifferenceGradient(w1d) { loss(xd, $0, w2d, w3d) }, absolute: 1e-5, relative: 1e-4, "swiglu dW1")
        assertClose(Array(dW13[(hidden * dim)...]), finiteDifferenceGradient(w3d) { loss(xd, w1d, w2d, $0) }, absolute: 1e-5, relative: 1e-4, "swiglu dW3")
        assertClose(dW2, finiteDifferenceGradient(w2d) { loss(xd, w1d, $0, w3d) }, absolute: 1e-5, relative: 1e-4, "swiglu dW2")
    }
}
