import Kernels
import ReferenceKernels
import TestSupport
import XCTest

final class RoPETests: XCTestCase {
    func testMatchesReferenceAtArbitraryPositions() {
        var rng = SeededGenerator(seed: 30)
        for (rows, heads, headDim) in [(1, 1, 2), (7, 3, 16), (13, 8, 32), (33, 2, 64)] {
            let positions = (0..<rows).map { _ in Int.random(in: 0..<4096, using: &rng) }
            let table = RoPETable(headDim: headDim, maxPositions: 4096, theta: 10_000)
            let x = rng.uniform(rows * heads * headDim)
            let y = Run.rope(x, rows: rows, heads: heads, positions: positions, table: table)
            // The reference rotates one head at a time: view [rows, heads·d] as [rows·heads, d].
            let expected = Reference.rope(widened(x), rows: rows * heads, dim: headDim,
                                          positions: positions.flatMap { Array(repeating: $0, count: heads) }, theta: 10_000.0)
            assertClose(y, expected, absolute: 2e-6, relative: 1e-5, "rope rows \(rows) heads \(heads) d \(headDim)")
        }
    }

    func testPositionZeroIsTheIdentity() {
        var rng = SeededGenerator(seed: 31)
        let x = rng.uniform(5 * 32)
        let table = RoPETable(headDim: 32, maxPositions: 8, theta: 10_000)
        XCTAssertEqual(Run.rope(x, rows: 5, heads: 1, positions: [0, 0, 0, 0, 0], table: table), x)
    }

    /// ⟨RoPE(q, m), RoPE(k, n)⟩ depends only on m − n.
    func testInnerProductsDependOnlyOnRelativePosition() {
        var rng = SeededGenerator(seed: 32)
        let d = 64
        let q = rng.uniform(d), k = rng.uniform(d)
        let table = RoPETable(headDim: d, maxPositions: 512, theta: 10_000)
        func score(_ m: Int, _ n: Int) -> Float {
            let a = Run.rope(q, rows: 1, heads: 1, positions: [m], table: table)
            let b = Run.rope(k, rows: 1, heads: 1, positions: [n], table: table)
            return zip(a, b).map(*).reduce(0, +)
        }
        for (m, n, shift) in [(5, 2, 100), (0, 7, 300), (17, 17, 250)] {
            XCTAssertEqual(score(m, n), score(m + shift, n + shift), accuracy: 1e-4, "m \(m) n \(n) shifted by \(shift)")
        }
        XCTAssertNotEqual(score(5, 2), score(5, 3), "a different offset gives a different score")
    }

    func testInverseUndoesTheRotation() {
        var rng = SeededGenerator(seed: 33)
        let table = RoPETable(headDim: 8, maxPositions: 100, theta: 500)
        let positions = [3, 99, 0, 42]
        let x = rng.uniform(4 * 2 * 8)
        let y = Matrix(Run.rope(x, rows: 4, heads: 2, positions: positions, table: table), rows: 4, columns: 16)
        let pinned = Pinned(positions)
        RoPE.backward(y.view, RotaryPositions(table: table, positions: pinned.elements))
        assertClose(y.array, x, absolute: 1e-6, "inverse rotation")
    }

    /// The K heads of a fused `[rows, q | k | v]` buffer rotated where they lie: as the packed
    /// rotation of the same values, every other column bit for bit as it was. Then the inverse,
    /// on the same column view, gives the input back.
    func testRotatesAColumnViewOfAFusedBuffer() {
        var rng = SeededGenerator(seed: 34)
        let (rows, heads, kvHeads, d) = (5, 3, 1, 8)
        let width = (heads + 2 * kvHeads) * d
        let table = RoPETable(headDim: d, maxPositions: 64, theta: 10_000)
        let positions = (0..<rows).map { _ in Int.random(in: 0..<64, using: &rng) }
        let fused = rng.uniform(rows * width)
        let qkv = Matrix(fused, rows: rows, columns: width)
        let keyColumns = (heads * d)..<((heads + kvHeads) * d)
        let keys = qkv.view.columns(keyColumns)
        let packedKeys = (0..<rows).flatMap { r in fused[(r * width + keyColumns.lowerBound)..<(r * width + keyColumns.upperBound)] }
        let pinned = Pinned(positions)
        let rope = RotaryPositions(table: table, positions: pinned.elements)
        RoPE.apply(to: keys, rope)
        assertClose(keys.array, widened(Run.rope(packedKeys, rows: rows, heads: kvHeads, positions: positions, table: table)),
                    absolute: 1e-6, "k heads rotated in place")
        let after = qkv.array
        for r in 0..<rows {
            for c in 0..<width where !keyColumns.contains(c) {
                XCTAssertEqual(after[r * width + c].bitPattern, fused[r * width + c].bitPattern, "row \(r) column \(c) outside the view")
            }
        }
        XCTAssertNotEqual(keys.array, packedKeys, "the rotation changed the k heads")
        RoPE.backward(keys, rope)
        assertClose(qkv.array, fused, absolute: 1e-6, "inverse rotation on the column view")
    }
}
