import Kernels

/// The split of the flat parameter buffer into one contiguous slice per rank, for optimizer-state
/// sharding (ZeRO stage 1): rank r owns `ranges[r]`, keeps the AdamW moments of that slice only,
/// and updates that slice of the parameters. Slices start at multiples of 16 elements (64 bytes).
public struct OptimizerShards: Sendable, Equatable {
    public let ranges: [Range<Int>]

    /// `count` elements over `ranks` slices as equal as the 16-element alignment allows.
    public init(count: Int, ranks: Int) {
        precondition(ranks >= 1 && count >= 0, "OptimizerShards: \(ranks) ranks over \(count) elements")
        let bounds = (0...ranks).map { r in r == ranks ? count : min(count, (count * r / ranks) / 16 * 16) }
        ranges = (0..<ranks).map { bounds[$0]..<bounds[$0 + 1] }
    }

    /// Sums `gradients` over the group, each slice into its owner's copy (a reduce-scatter):
    /// afterwards rank r's `ranges[r]` holds the sum, the rest of its buffer is stale.
    public func reduceToOwners(_ gradients: TensorBuffer, group: TrainingGroup) {
        group.reduceScatterSum(gradients.storage, ranges: ranges)
    }

    /// Gives every rank each owner's slice of `parameters` (an all-gather).
    public func broadcastFromOwners(_ parameters: TensorBuffer, group: TrainingGroup) {
        group.allGather(parameters.storage, ranges: ranges)
    }

    /// Assembles elements `range` of the whole buffer, of which each rank holds its own slice
    /// (`slice`, the values of ``ranges``[rank]), into `target` on `root` (`range.count` values;
    /// nil elsewhere): a gather of one piece, such as one tensor of the AdamW moments, so that root
    /// never needs the whole buffer.
    public func gather(_ range: Range<Int>, of slice: TensorBuffer, into target: UnsafeMutableBufferPointer<Float>?, root: Int,
                       group: TrainingGroup) {
        let rank = group.rank
        precondition(slice.count == ranges[rank].count, "OptimizerShards.gather: rank \(rank)'s slice has \(slice.count) values, its range \(ranges[rank].count)")
        for (owner, owned) in ranges.enumerated() {
            let part = owned.clamped(to: range)
            guard !part.isEmpty else { continue }
            if rank == root {
                guard let target else { preconditionFailure("OptimizerShards.gather: the root needs a target") }
                let destination = UnsafeMutableBufferPointer(rebasing: target[(part.lowerBound - range.lowerBound)..<(part.upperBound - range.lowerBound)])
                if owner == root {
                    _ = destination.update(fromContentsOf: slice.view(part.lowerBound - owned.lowerBound, part.count))
                } else {
                    group.receive(destination, from: owner)
                }
            } else if owner == rank {
                group.send(slice.view(part.lowerBound - owned.lowerBound, part.count), to: root)
            }
        }
    }
}
