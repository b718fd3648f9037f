import Kernels
import TensorIO
import TestSupport
import XCTest

/// The kernels against `../shared/data/model/reference_outputs.safetensors`: outputs of an
/// independent float64 PyTorch implementation on the tiny model in `model.safetensors`
/// (vocab 300, d_model 64, 4 heads, d_ff 172, θ 10000; inputs [2, 20, 64]).
final class ReferenceOutputTests: XCTestCase {
    var outputs: SafeTensorsFile!
    var weights: SafeTensorsFile!
    let (batch, length, dim, heads, hidden, vocab) = (2, 20, 64, 4, 172, 300)
    var rows: Int { batch * length }

    override func setUpWithError() throws {
        outputs = try SafeTensorsFile(path: try Fixtures.requireSharedData("model/reference_outputs.safetensors"))
        weights = try SafeTensorsFile(path: try Fixtures.requireSharedData("model/model.safetensors"))
    }

    /// Float32 against float64 PyTorch: about 1e-5 relative, per the fixture's README.
    func assertMatchesFixture(_ actual: [Float], _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try outputs.floats(name)
        assertClose(actual, expected, absolute: 2e-5, relative: 1e-5, name, file: file, line: line)
    }

    func testLinear() throws {
        let x = try outputs.floats("input.x", shape: [batch, length, dim])
        let w1 = try weights.floats("layers.0.ffn.w1.weight", shape: [hidden, dim])
        let xm = Matrix(x, rows: rows, columns: dim), weight = Matrix(w1, rows: hidden, columns: dim)
        let y = Matrix(rows: rows, columns: hidden, repeating: .nan)
        Linear.forward(x: xm.view, weight: weight.view, y: y.view)
        try assertMatchesFixture(y.array, "linear.w1")
    }

    func testEmbedding() throws {
        let ids = try outputs.integers("input.token_ids", shape: [batch, length]).map { Int32($0) }
        let table = try weights.floats("token_embeddings.weight", shape: [vocab, dim])
        let idBuffer = Pinned(ids), tableMatrix = Matrix(table, rows: vocab, columns: dim)
        let y = Matrix(rows: rows, columns: dim, repeating: .nan)
        Embedding.forward(ids: idBuffer.elements, table: tableMatrix.view, y: y.view)
        try assertMatchesFixture(y.array, "embedding")
    }

    func testRMSNorm() throws {
        let x = try outputs.floats("input.x"), w = try weights.floats("layers.0.ln1.weight", shape: [dim])
        try assertMatchesFixture(Run.rmsNorm(x, weight: w, rows: rows, dim: dim).y, "rmsnorm.ln1")
    }

    func testRoPEOverTheWholeLastDimension() throws {
        let x = try outputs.floats("input.x")
        let table = RoPETable(headDim: dim, maxPositions: length, theta: 10_000)
        let positions = (0..<batch).flatMap { _ in Array(0..<length) }
        try assertMatchesFixture(Run.rope(x, rows: rows, heads: 1, positions: positions, table: table), "rope.x")
    }

    func testSiLU() throws {
        try assertMatchesFixture(Run.silu(try outputs.floats("input.x")), "silu.x")
    }

    func testSoftmax() throws {
        try assertMatchesFixture(Run.softmax(try outputs.floats("input.x"), rows: rows, cols: dim), "softmax.x_lastdim")
    }

    func testMaskedScaledDotProductAttention() throws {
        // input.q/k/v are [B, H, T, d]: one "head" per (batch, head) pair in our [B, T, H·d] terms.
        let d = dim / heads
        let q = try outputs.floats("input.q", shape: [batch, heads, length, d])
        let k = try outputs.floats("input.k"), v = try outputs.floats("input.v")
        let mask = try outputs.integers("input.mask", shape: [length, length]).map { $0 != 0 }
        let dims = AttentionDims(batch: batch * heads, queryLength: length, keyLength: length, heads: 1, kvHeads: 1, headDim: d)
        try assertMatchesFixture(Run.attention(q: q, k: k, v: v, dims: dims, mask: mask).out, "sdpa.masked")
    }

    func testSwiGLU() throws {
        let x = try outputs.floats("input.x")
        let w1 = try weights.floats("layers.0.ffn.w1.weight", shape: [hidden, dim])
        let w2 = try weights.floats("layers.0.ffn.w2.weight", shape: [dim, hidden])
        let w3 = try weights.floats("layers.0.ffn.w3.weight", shape: [hidden, dim])
        try assertMatchesFixture(Run.swiglu(x, w1: w1, w2: w2, w3: w3, rows: rows, dim: dim, hidden: hidden), "swiglu.layer0")
    }
}
