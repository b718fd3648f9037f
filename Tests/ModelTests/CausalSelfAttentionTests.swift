import Kernels
import Model
import ReferenceKernels
import TensorIO
import TestSupport
import XCTest

/// The attention layer (fused QKV projection, RoPE, attention over strided heads, output
/// projection) against the plain-loop reference in Double, with grouped-query heads and lengths
/// across the kernels' 64-row query blocks.
final class CausalSelfAttentionTests: XCTestCase {
    /// x: [B·T, H·d] through the layer with weights wq, wk, wv: [·, H·d] and wo: [H·d, H·d].
    static func forward(_ x: [Float], wq: [Float], wk: [Float], wv: [Float], wo: [Float], dims: AttentionDims,
                        positions: [Int], theta: Double) -> [Float] {
        let rows = dims.batch * dims.queryLength, modelDim = dims.heads * dims.headDim
        let qkvWidth = CausalSelfAttention.qkvWidth(dims)
        let table = RoPETable(headDim: dims.headDim, maxPositions: (positions.max() ?? 0) + 1, theta: theta)
        let input = TensorBuffer(x), qkvWeight = TensorBuffer(CausalSelfAttention.packQKV(q: wq, k: wk, v: wv)), outputWeight = TensorBuffer(wo)
        let y = TensorBuffer(count: rows * modelDim), qkv = TensorBuffer(count: rows * qkvWidth), context = TensorBuffer(count: rows * modelDim)
        let probabilities = TensorBuffer(count: dims.batch * dims.heads * dims.queryLength * dims.keyLength)
        positions.withUnsafeBufferPointer { positions in
            CausalSelfAttention.forward(
                x: input.matrix(rows: rows, columns: modelDim), qkvWeight: qkvWeight.matrix(rows: qkvWidth, columns: modelDim),
                outputWeight: outputWeight.matrix(rows: modelDim, columns: modelDim), rope: RotaryPositions(table: table, positions: positions),
                y: y.matrix(rows: rows, columns: modelDim), qkv: qkv.matrix(rows: rows, columns: qkvWidth),
                saved: .probabilities(probabilities.matrix(rows: dims.batch * dims.heads * dims.queryLength, columns: dims.keyLength)),
                context: context.matrix(rows: rows, columns: modelDim), dims: dims)
        }
        return y.array
    }

    func testMatchesReference() {
        for (batch, length, heads, kvHeads, d) in [(1, 1, 1, 1, 4), (2, 7, 4, 4, 8), (3, 13, 8, 2, 4), (2, 33, 2, 1, 16), (1, 70, 4, 4, 16)] {
            var rng = SeededGenerator(seed: UInt64(length * 7 + heads))
            let dim = heads * d, kvDim = kvHeads * d
            let x = rng.uniform(batch * length * dim)
            let wq = rng.uniform(dim * dim, scale: 0.5), wk = rng.uniform(kvDim * dim, scale: 0.5)
            let wv = rng.uniform(kvDim * dim, scale: 0.5), wo = rng.uniform(dim * dim, scale: 0.5)
            let positions = Array(0..<length)
            let dims = AttentionDims(batch: batch, queryLength: length, keyLength: length, heads: heads, kvHeads: kvHeads, headDim: d)
            let y = Self.forward(x, wq: wq, wk: wk, wv: wv, wo: wo, dims: dims, positions: (0..<batch).flatMap { _ in positions }, theta: 10_000)
            let expected = Reference.causalSelfAttention(widened(x), wq: widened(wq), wk: widened(wk), wv: widened(wv), wo: widened(wo),
                                                         batch: batch, length: length, dim: dim, heads: heads, kvHeads: kvHeads,
                                                         positions: positions, theta: 10_000.0)
            assertClose(y, expected, absolute: reductionTolerance(4 * dim + length), relative: 1e-5, "mhsa B\(batch) T\(length) H\(heads)/\(kvHeads)")
        }
    }

    /// Layer 0's attention of the CS336 fixture model against the independent float64 PyTorch
    /// implementation's output (`../shared/data/model/reference_outputs.safetensors`).
    func testMatchesTheFixturesPyTorchOutput() throws {
        let outputs = try SafeTensorsFile(path: try Fixtures.requireSharedData("model/reference_outputs.safetensors"))
        let weights = try SafeTensorsFile(path: try Fixtures.requireSharedData("model/model.safetensors"))
        let (batch, length, dim, heads) = (2, 20, 64, 4)
        let w = { (name: String) in try weights.floats("layers.0.attn.\(name).weight", shape: [dim, dim]) }
        let dims = AttentionDims(batch: batch, queryLength: length, keyLength: length, heads: heads, kvHeads: heads, headDim: dim / heads)
        let y = Self.forward(try outputs.floats("input.x"), wq: try w("q_proj"), wk: try w("k_proj"), wv: try w("v_proj"), wo: try w("output_proj"),
                             dims: dims, positions: (0..<batch).flatMap { _ in Array(0..<length) }, theta: 10_000)
        assertClose(y, try outputs.floats("mhsa_rope.layer0"), absolute: 2e-5, relative: 1e-5, "mhsa_rope.layer0")
    }
}
