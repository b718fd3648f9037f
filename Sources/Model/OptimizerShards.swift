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
        for (owner, range) in ranges.enumerated() where !range.isEmpty {
            group.reduceSum(gradients.slice(range.lowerBound, range.count), root: owner)
        }
    }

    /// Gives every rank each owner's slice of `parameters` (an all-gather).
    public func broadcastFromOwners(_ parameters: TensorBuffer, group: TrainingGroup) {
        for (owner, range) in ranges.enumerated() where !range.isEmpty {
            group.broadcast(parameters.slice(range.lowerBound, range.count), root: owner)
        }
    }

    /// Assembles every rank's `slice` (the values of its own range) into `whole` on `root`
    /// (a gather; `whole` is only read on root and may be nil elsewhere).
    public func gather(_ slice: TensorBuffer, into whole: TensorBuffer?, root: Int, group: TrainingGroup) {
        let rank = group.rank
        precondition(slice.count == ranges[rank].count, "OptimizerShards.gather: rank \(rank)'s slice has \(slice.count) values, its range \(ranges[rank].count)")
        if rank == root {
            guard let whole else { preconditionFailure("OptimizerShards.gather: the root needs the whole buffer") }
            for (owner, range) in ranges.enumerated() where !range.isEmpty {
                let target = whole.slice(range.lowerBound, range.count)
                if owner == root { _ = target.update(fromContentsOf: slice.storage) } else { group.receive(target, from: owner) }
            }
        } else if !ranges[rank].isEmpty {
            group.send(UnsafeBufferPointer(slice.storage), to: root)
        }
    }
}
