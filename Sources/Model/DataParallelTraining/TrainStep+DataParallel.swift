import Kernels

/// The parts of a step that involve the other ranks (with one rank, only the checks a single
/// process makes anyway).
extension TrainStep {
    var group: TrainingGroup { parallelism.group }

    /// The loss of the whole batch and whether to stop after this step, agreed by every rank in
    /// one small all-reduce: each rank contributes its own loss in its own slot (so a non-finite
    /// loss is named with its rank) and its wish to stop. Throws ``NonFiniteLoss`` on every rank
    /// when any rank's loss is not finite.
    func agreeOnStep(localLoss: Double, wantsToStop: Bool) throws -> (loss: Double, stop: Bool) {
        let ranks = group.size
        if ranks == 1 {
            guard localLoss.isFinite else { throw NonFiniteLoss(rank: 0, ranks: 1, loss: localLoss) }
            return (localLoss, wantsToStop)
        }
        for index in stepSummary.indices { stepSummary[index] = 0 }
        stepSummary[group.rank] = localLoss
        stepSummary[ranks] = wantsToStop ? 1 : 0
        stepSummary.withUnsafeMutableBufferPointer { group.allReduceSum($0) }
        if let bad = (0..<ranks).first(where: { !stepSummary[$0].isFinite }) {
            throw NonFiniteLoss(rank: bad, ranks: ranks, loss: stepSummary[bad])
        }
        // The mean of the ranks' means is the batch's mean: every rank has the same number of rows.
        let loss = (0..<ranks).reduce(0.0) { $0 + stepSummary[$1] } / Double(ranks)
        return (loss, stepSummary[ranks] > 0)
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
    /// Returns the norm before clipping.
    func clipGradients() -> Double {
        guard shards != nil, group.size > 1 else {
            return GradientClipping.clip(session.gradients, maxNorm: maxGradientNorm)
        }
        let own = ownParts(of: session.gradients)
        var squares = [own.reduce(0.0) { $0 + GradientClipping.sumOfSquares(UnsafeBufferPointer($1)) }]
        squares.withUnsafeMutableBufferPointer { group.allReduceSum($0) }
        let norm = squares[0].squareRoot()
        if norm > maxGradientNorm {
            for part in own { GradientClipping.scale(part, by: Float(maxGradientNorm / (norm + GradientClipping.epsilon))) }
        }
        return norm
    }

    /// This rank's parts of a buffer in the parameters' layout (its optimizer's segments).
    func ownParts(of buffer: TensorBuffer) -> [UnsafeMutableBufferPointer<Float>] {
        optimizer.segments.map { buffer.slice($0.lowerBound, $0.count) }
    }
}
