import Foundation
import Kernels
@testable import Model
import TensorIO
import XCTest

/// The pieces of data-parallel training that need no second process: how the parameters are
/// sharded, that a sharded AdamW is the whole one cut in slices, that ranks' rows tile a batch.
/// (Training across processes is checked with real MPI processes in MPITests.)
final class DataParallelPiecesTests: XCTestCase {
    func testShardsTileTheBufferInAlignedPieces() {
        for (count, ranks, block) in [(0, 1, 64), (5, 1, 64), (5, 2, 64), (100, 3, 1 << 20), (1000, 4, 300), (33, 8, 16), (1_000_003, 7, 65_536)] {
            let shards = OptimizerShards(count: count, ranks: ranks, block: block)
            let label = "\(count) over \(ranks) in blocks of \(block)"
            XCTAssertEqual(shards.blocks.first?.lowerBound ?? 0, 0, label)
            XCTAssertEqual(shards.blocks.last?.upperBound ?? 0, count, label)
            for (left, right) in zip(shards.blocks, shards.blocks.dropFirst()) { XCTAssertEqual(left.upperBound, right.lowerBound, label) }
            XCTAssertTrue(shards.blocks.allSatisfy { $0.count <= block && !$0.isEmpty }, label)
            XCTAssertEqual(shards.segments.count, ranks)
            for (blockRange, counts) in zip(shards.blocks, shards.pieceCounts) {
                XCTAssertEqual(counts.reduce(0, +), blockRange.count, label)
                // Pieces start at multiples of 16 within their block.
                var start = 0
                for count in counts.dropLast() { start += count; XCTAssertEqual(start % 16, 0, label) }
                if blockRange.count >= 64 * ranks { XCTAssertLessThanOrEqual(counts.max()! - counts.min()!, 32, "balanced: \(counts)") }
            }
            // Every value is owned by exactly one rank, each rank's pieces in buffer order.
            var owner = [Int](repeating: -1, count: count)
            for (rank, segments) in shards.segments.enumerated() {
                XCTAssertEqual(segments, segments.sorted { $0.lowerBound < $1.lowerBound }, label)
                for segment in segments {
                    for i in segment { XCTAssertEqual(owner[i], -1, "\(label): \(i) owned twice"); owner[i] = rank }
                }
            }
            XCTAssertFalse(owner.contains(-1), "\(label): some value has no owner")
        }
    }

    func testShardedAdamWIsTheWholeOneCutInPieces() throws {
        let model = try ModelFactory.model(seed: 5)
        let layout = model.layout, count = layout.totalCount
        let options = AdamWOptions(weightDecay: 0.1)
        let whole = try AdamW(layout: layout, options: options)
        // Blocks of 1,000 values: pieces start and end inside tensors and span tensor boundaries.
        let shards = OptimizerShards(count: count, ranks: 3, block: 1000)
        XCTAssertGreaterThan(shards.blocks.count, 3)
        let sliced = try shards.segments.map { try AdamW(layout: layout, options: options, segments: $0) }
        let parametersWhole = TensorBuffer(model.parameters.array), parametersSliced = TensorBuffer(model.parameters.array)
        var generator = SeededGenerator(seed: 9)
        for step in 0..<4 {
            let gradients = TensorBuffer(generator.uniform(count, scale: 0.5))
            whole.step(parameters: parametersWhole, gradients: gradients, learningRate: 1e-2 / Float(step + 1))
            for optimizer in sliced { optimizer.step(parameters: parametersSliced, gradients: gradients, learningRate: 1e-2 / Float(step + 1)) }
        }
        XCTAssertEqual(parametersSliced.array, parametersWhole.array, "the same update, bit for bit")
        XCTAssertNotEqual(parametersWhole.array, model.parameters.array)
        for (segments, optimizer) in zip(shards.segments, sliced) {
            XCTAssertEqual(optimizer.firstMoment.array, segments.flatMap { Array(whole.firstMoment.array[$0]) })
            XCTAssertEqual(optimizer.secondMoment.array, segments.flatMap { Array(whole.secondMoment.array[$0]) })
        }
        XCTAssertThrowsError(try AdamW(layout: layout, options: options, segments: [0..<(count + 1)]))
        XCTAssertThrowsError(try AdamW(layout: layout, options: options, segments: [10..<20, 15..<30]), "overlapping")
        XCTAssertThrowsError(try AdamW(layout: layout, options: options, firstMoment: TensorBuffer(count: 3), secondMoment: TensorBuffer(count: 3),
                                       step: 1, segments: [0..<4]))
    }

    func testGatherAssemblesARangeFromPackedPieces() {
        // One rank owns every piece; the gather then reads its packed buffer at the right offsets.
        let shards = OptimizerShards(count: 1000, ranks: 1, block: 96)
        let packed = TensorBuffer((0..<1000).map(Float.init))
        var target = [Float](repeating: -1, count: 250)
        target.withUnsafeMutableBufferPointer { shards.gather(300..<550, of: packed, into: $0, root: 0, group: SingleProcessGroup()) }
        XCTAssertEqual(target, (300..<550).map(Float.init))
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
        let shards = OptimizerShards(count: gradients.count, ranks: 3, block: 10_000)
        let squares = shards.segments.joined().map { GradientClipping.sumOfSquares(gradients.view($0.lowerBound, $0.count)) }
        XCTAssertEqual(squares.reduce(0, +).squareRoot(), GradientClipping.norm(gradients), accuracy: 1e-9 * GradientClipping.norm(gradients))
    }
}
