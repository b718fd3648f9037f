import Kernels
import Model
import XCTest

/// The Swift examples of the guide (Sources/Model/Model.docc), compiled and checked here so that
/// the articles cannot drift from the API.
final class GuideExampleTests: XCTestCase {
    func testLinearExample() {
        let (rows, inFeatures, outFeatures) = (2, 3, 2)
        let x: [Float] = [1, 2, 3,  4, 5, 6]
        let w: [Float] = [1, 0, 0,  0, 1, 1]      // [out, in]
        var y = [Float](repeating: 0, count: rows * outFeatures)
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { y in
                    Linear.forward(x: x, weight: w, y: y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
                }
            }
        }
        XCTAssertEqual(y, [1, 5, 4, 11])
    }

    func testRMSNormExample() {
        let x: [Float] = [3, 4], gain: [Float] = [1, 1]
        var y = [Float](repeating: 0, count: 2), rstd = [Float](repeating: 0, count: 1)
        x.withUnsafeBufferPointer { x in
            gain.withUnsafeBufferPointer { gain in
                y.withUnsafeMutableBufferPointer { y in
                    rstd.withUnsafeMutableBufferPointer { rstd in
                        RMSNorm.forward(x: x, weight: gain, y: y, rstd: rstd, rows: 1, dim: 2)
                    }
                }
            }
        }
        // rms = √((9 + 16) / 2) ≈ 3.536, so y ≈ [0.849, 1.131]
        XCTAssertEqual(y[0], 0.8485, accuracy: 1e-3)
        XCTAssertEqual(y[1], 1.1314, accuracy: 1e-3)
    }

    func testRoPEExample() {
        let table = RoPETable(headDim: 2, maxPositions: 8, theta: 10_000)
        var q: [Float] = [1, 0]                 // one row, one head of size 2
        let positions = [2]
        q.withUnsafeMutableBufferPointer { q in
            positions.withUnsafeBufferPointer { positions in
                RoPE.apply(q.baseAddress!, rows: 1, rowStride: 2, heads: 1, positions: positions, table: table)
            }
        }
        // θ₀ = 1: rotated by 2 radians, q ≈ [cos 2, sin 2] = [−0.416, 0.909]
        XCTAssertEqual(q[0], -0.4161, accuracy: 1e-3)
        XCTAssertEqual(q[1], 0.9093, accuracy: 1e-3)
    }

    func testScheduleExample() {
        let schedule = CosineSchedule(maxLearningRate: 1e-3, minLearningRate: 1e-4, warmupSteps: 100, cosineSteps: 1000)
        XCTAssertEqual(schedule.learningRate(at: 50), 5e-4, accuracy: 1e-12)    // halfway through warm-up
        XCTAssertEqual(schedule.learningRate(at: 1000), 1e-4, accuracy: 1e-12)  // the end of the cosine
    }

    func testModelExample() throws {
        let config = ModelConfig(vocabSize: 1000, contextLength: 128, dModel: 64, numLayers: 2,
                                 numHeads: 4, dFF: 172, ropeTheta: 10_000)
        let model = try TransformerLM(config: config, seed: 0)
        let logits = try model.forward(tokens: [1, 2, 3], batch: 1, length: 3)   // [1, 3, 1000]
        let trace = try model.trace(tokens: [1, 2, 3])                           // every stage, as lm trace prints it
        XCTAssertEqual(logits.count, 3 * 1000)
        XCTAssertEqual(trace.stages.count, 17)
    }
}
