import Foundation
import Kernels
@testable import Model
import TensorIO
import XCTest

/// The pieces of data-parallel training that need no second process: how the parameters are
/// sharded, that a sharded AdamW is the whole one cut in slices, that ranks' rows tile a batch.
/// (Training across processes is checked with real MPI processes in MPITests.)
final class DataParallelPiecesTests: XCTestCase {
    func testShardsTileTheBufferInAlignedSlices() {
        for (count, ranks) in [(0, 1), (5, 1), (5, 2), (100, 3), (1000, 4), (33, 8), (1_000_003, 7)] {
            let shards = OptimizerShards(count: count, ranks: ranks)
            XCTAssertEqual(shards.ranges.count, ranks)
            XCTAssertEqual(shards.ranges.first?.lowerBound, 0)
            XCTAssertEqual(shards.ranges.last?.upperBound, count, "\(count) over \(ranks)")
            for (left, right) in zip(shards.ranges, shards.ranges.dropFirst()) {
                XCTAssertEqual(left.upperBound, right.lowerBound, "contiguous, \(count) over \(ranks)")
            }
            for range in shards.ranges.dropLast() {
                XCTAssertEqual(range.upperBound % 16, 0, "slices start at multiples of 16")
            }
            if count >= 16 * ranks * 4 {
                let sizes = shards.ranges.map(\.count)
                // Each bound moves down by less than 16 from the even split.
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 32, "balanced: \(sizes)")
            }
        }
    }

    func testShardedAdamWIsTheWholeOneCutInSlices() throws {
        let model = try ModelFactory.model(seed: 5)
        let layout = model.layout, count = layout.totalCount
        let options = AdamWOptions(weightDecay: 0.1)
        let whole = try AdamW(layout: layout, options: options)
        let shards = OptimizerShards(count: count, ranks: 3)
        XCTAssertTrue(shards.ranges.contains { range in layout.entries.contains { $0.range.overlaps(range) && !range.contains($0.offset) } },
                      "some slice starts inside a tensor (the case worth checking)")
        let sliced = try shards.ranges.map { try AdamW(layout: layout, options: options, shard: $0) }
        let parametersWhole = TensorBuffer(model.parameters.array), parametersSliced = TensorBuffer(model.parameters.array)
        var generator = SeededGenerator(seed: 9)
        for step in 0..<4 {
            let gradients = TensorBuffer(generator.uniform(count, scale: 0.5))
            whole.step(parameters: parametersWhole, gradients: gradients, learningRate: 1e-2 / Float(step + 1))
            for optimizer in sliced { optimizer.step(parameters: parametersSliced, gradients: gradients, learningRate: 1e-2 / Float(step + 1)) }
        }
        XCTAssertEqual(parametersSliced.array, parametersWhole.array, "the same update, bit for bit")
        XCTAssertNotEqual(parametersWhole.array, model.parameters.array)
        for (range, optimizer) in zip(shards.ranges, sliced) {
            XCTAssertEqual(optimizer.firstMoment.array, Array(whole.firstMoment.array[range]))
            XCTAssertEqual(optimizer.secondMoment.array, Array(whole.secondMoment.array[range]))
        }
        XCTAssertThrowsError(try AdamW(layout: layout, options: options, shard: 0..<(count + 1)))
        XCTAssertThrowsError(try AdamW(layout: layout, options: options, firstMoment: TensorBuffer(count: 3), secondMoment: TensorBuffer(count: 3),
                                       step: 1, shard: 0..<4))
    }

    func testRanksRowsTileTheBatchOneProcessDraws() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rows-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/ids.npy"
        try NPYWriter.write((0..<500).map { Int32($0 % 97) }, shape: [500], to: path)
        let data = try TokenDataset(path: path, vocabSize: 97)
        let (batch, length, ranks) = (6, 5, 3)
        var whole = BatchSampler(batch: batch, length: length, state: 42)
        var parts = (0..<ranks).map { _ in BatchSampler(batch: batch, length: length, state: 42) }
        for _ in 0..<3 {
            var inputs = [Int32](repeating: -1, count: batch * length), targets = inputs
            inputs.withUnsafeMutableBufferPointer { i in targets.withUnsafeMutableBufferPointer { t in whole.next(from: data, inputs: i, targets: t) } }
            var joinedInputs: [Int32] = [], joinedTargets: [Int32] = []
            for rank in 0..<ranks {
                let rows = (rank * batch / ranks)..<((rank + 1) * batch / ranks)
                var i = [Int32](repeating: -1, count: rows.count * length), t = i
                i.withUnsafeMutableBufferPointer { i in t.withUnsafeMutableBufferPointer { t in parts[rank].next(from: data, rows: rows, inputs: i, targets: t) } }
                joinedInputs += i
                joinedTargets += t
            }
            XCTAssertEqual(joinedInputs, inputs)
            XCTAssertEqual(joinedTargets, targets)
            XCTAssertTrue(parts.allSatisfy { $0.state == whole.state }, "every rank's generator stays in step")
        }
    }

    func testGlobalNormOfSlicesIsTheWholeNorm() {
        var generator = SeededGenerator(seed: 3)
        let gradients = TensorBuffer(generator.uniform(200_001))
        let shards = OptimizerShards(count: gradients.count, ranks: 3)
        let squares = shards.ranges.map { GradientClipping.sumOfSquares(gradients.view($0.lowerBound, $0.count)) }
        XCTAssertEqual(squares.reduce(0, +).squareRoot(), GradientClipping.norm(gradients), accuracy: 1e-9 * GradientClipping.norm(gradients))
    }
}
