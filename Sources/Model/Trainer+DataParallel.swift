import Foundation
import Kernels
import TensorIO

/// The steps of training that involve the other ranks (nothing happens with one rank but the
/// checks a single process makes anyway).
extension Trainer {
    /// The loss of the whole batch and whether to stop after this step, agreed by every rank in
    /// one small all-reduce: each rank contributes its own loss in its own slot (so a non-finite
    /// loss is named with its rank) and its wish to stop. Throws the same error on every rank when
    /// any rank's loss is not finite.
    func agreeOnStep(localLoss: Double, wantsToStop: Bool) throws -> (loss: Double, stop: Bool) {
        let ranks = group.size
        if ranks == 1 {
            guard localLoss.isFinite else {
                throw ModelError("step \(step + 1): the training loss is \(localLoss); stopping. The last checkpoint in \(runDirectory) (step \(state.step)) is intact")
            }
            return (localLoss, false)
        }
        stepSummary.update(repeating: 0)
        stepSummary[group.rank] = localLoss
        stepSummary[ranks] = wantsToStop ? 1 : 0
        group.allReduceSum(stepSummary)
        if let bad = (0..<ranks).first(where: { !stepSummary[$0].isFinite }) {
            throw ModelError("step \(step + 1): the training loss on rank \(bad) of \(ranks) is \(stepSummary[bad]); stopping every rank. The last checkpoint in \(runDirectory) (step \(state.step)) is intact",
                             isCollective: true)
        }
        // The mean of the ranks' means is the batch's mean: every rank has the same number of rows.
        let loss = (0..<ranks).reduce(0.0) { $0 + stepSummary[$1] } / Double(ranks)
        return (loss, stepSummary[ranks] > 0)
    }

    /// `body`'s result and the seconds it took.
    func timed<T>(_ body: () throws -> T) rethrows -> (value: T, seconds: Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let value = try body()
        return (value, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// Each rank's gradients are the mean over its own rows; their mean over the ranks is the
    /// whole batch's gradient. Sharded, only the owner's slice receives it.
    func averageGradients() {
        let ranks = group.size
        guard ranks > 1 else { return }
        let gradients = session.gradients
        if let shards {
            shards.reduceToOwners(gradients, group: group)
            for part in ownParts(of: gradients) { GradientClipping.scale(part, by: 1 / Float(ranks)) }
        } else {
            group.allReduceSum(gradients.storage)
            GradientClipping.scale(gradients.storage, by: 1 / Float(ranks))
        }
    }

    /// Clipping by the global norm; sharded, the norm's square is summed over the owners' slices.
    func clipGradients() {
        guard shards != nil, group.size > 1 else {
            GradientClipping.clip(session.gradients, maxNorm: options.gradientClip)
            return
        }
        let own = ownParts(of: session.gradients)
        var squares = [own.reduce(0.0) { $0 + GradientClipping.sumOfSquares(UnsafeBufferPointer($1)) }]
        squares.withUnsafeMutableBufferPointer { group.allReduceSum($0) }
        let norm = squares[0].squareRoot()
        if norm > options.gradientClip {
            for part in own { GradientClipping.scale(part, by: Float(options.gradientClip / (norm + GradientClipping.epsilon))) }
        }
    }

    /// This rank's parts of a buffer in the parameters' layout (its optimizer's segments).
    func ownParts(of buffer: TensorBuffer) -> [UnsafeMutableBufferPointer<Float>] {
        optimizer.segments.map { buffer.slice($0.lowerBound, $0.count) }
    }

    /// Throws on every rank, naming the ranks, unless all ranks hold bit-identical weights.
    func checkReplicasAgree(when moment: String) throws {
        guard group.size > 1 else { return }
        let fingerprints = group.allGather(Self.fingerprint(model.parameters))
        let differing = fingerprints.indices.filter { fingerprints[$0] != fingerprints[0] }
        guard differing.isEmpty else {
            let list = fingerprints.enumerated().map { String(format: "rank %d: %016llx", $0.offset, $0.element) }.joined(separator: ", ")
            throw ModelError("step \(step), \(moment): the weights of rank\(differing.count == 1 ? "" : "s") \(differing.map(String.init).joined(separator: ", ")) differ from rank 0's (\(list)); the ranks no longer train one model. Stopping every rank without writing; the last checkpoint in \(runDirectory) (step \(state.step)) is intact",
                             isCollective: true)
        }
    }

    /// The optimizer file's tensors, in its order: both moments of every parameter tensor, with
    /// the range of the flat buffer each covers (unsharded, the moments are laid out like it).
    private var momentTensors: [(name: String, shape: [Int], moment: TensorBuffer, range: Range<Int>)] {
        model.layout.entries.flatMap { entry in
            [("exp_avg." + entry.name, entry.shape, optimizer.firstMoment, entry.range),
             ("exp_avg_sq." + entry.name, entry.shape, optimizer.secondMoment, entry.range)]
        }
    }

    /// Rank 0 writes `optimizer.safetensors`: from its own moments, or, when they are sharded,
    /// one tensor at a time gathered from the owners (so rank 0 never holds the whole state).
    func writeMoments(to path: String) throws {
        let tensors = momentTensors, metadata = ["step": String(step)]
        guard let shards else {
            let views = tensors.map { TensorView(name: $0.name, shape: $0.shape, values: $0.moment.view($0.range.lowerBound, $0.range.count)) }
            try SafeTensorsWriter.write(views: views, metadata: metadata, to: path)
            return
        }
        try SafeTensorsWriter.write(shapes: tensors.map { ($0.name, $0.shape) }, metadata: metadata, to: path) { index, buffer in
            shards.gather(tensors[index].range, of: tensors[index].moment, into: buffer, root: 0, group: group)
        }
    }

    /// The other ranks' side of ``writeMoments(to:)``: their parts of every tensor, in the same order.
    func sendMomentsToRankZero() {
        guard let shards else { return }
        for tensor in momentTensors { shards.gather(tensor.range, of: tensor.moment, into: nil, root: 0, group: group) }
    }

    /// A 64-bit digest of the exact bits of `buffer` (equal buffers, equal digests; any changed
    /// bit changes it with overwhelming probability).
    static func fingerprint(_ buffer: TensorBuffer) -> UInt64 {
        var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(buffer.count)
        for value in buffer.storage {
            hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01B3 &+ 0x9E37_79B9
            hash ^= hash >> 29
        }
        return hash
    }

    /// What this rank keeps for training, in bytes: the parameters, their gradients and the
    /// AdamW moments (whole, or this rank's part when sharded).
    public var stateBytesPerRank: (parameters: Int, gradients: Int, optimizer: Int) {
        (model.parameters.count * 4, session.gradients.count * 4, (optimizer.firstMoment.count + optimizer.secondMoment.count) * 4)
    }
}
