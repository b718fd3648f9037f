import Kernels

/// Who owns which parameters when the optimizer state is sharded (ZeRO stage 1): the flat
/// buffer is cut into blocks of at most `block` values (the group's bucket), and each block into
/// one piece per rank, in rank order, as equal as a 16-value alignment allows. Rank r owns its
/// piece of every block: it keeps the AdamW moments of those parameters only, and updates them.
///
/// Owning a piece of every block, rather than one contiguous slice, is what lets the exchange
/// work on the gradient and parameter buffers in place: a block is one contiguous MPI buffer whose
/// pieces are exactly the ranks' parts, so the reduce-scatter and the all-gather need no packing.
public struct OptimizerShards: Sendable, Equatable {
    /// The blocks, in order, covering `0..<count`.
    public let blocks: [Range<Int>]
    /// For each block, each rank's piece size (they tile the block in rank order).
    public let pieceCounts: [[Int]]
    /// For each rank, its pieces in buffer order (empty pieces left out).
    public let segments: [[Range<Int>]]

    /// `count` values in blocks of at most `block` (≥ 16 × ranks is sensible), over `ranks` ranks.
    public init(count: Int, ranks: Int, block: Int) {
        precondition(ranks >= 1 && count >= 0 && block >= 1, "OptimizerShards: \(ranks) ranks over \(count) values in blocks of \(block)")
        var blocks: [Range<Int>] = [], pieceCounts: [[Int]] = []
        var segments = [[Range<Int>]](repeating: [], count: ranks)
        for start in stride(from: 0, to: count, by: block) {
            let length = min(block, count - start)
            let bounds = (0...ranks).map { r in r == ranks ? length : min(length, (length * r / ranks) / 16 * 16) }
            blocks.append(start..<(start + length))
            pieceCounts.append((0..<ranks).map { bounds[$0 + 1] - bounds[$0] })
            for r in 0..<ranks where bounds[r + 1] > bounds[r] {
                segments[r].append((start + bounds[r])..<(start + bounds[r + 1]))
            }
        }
        self.blocks = blocks
        self.pieceCounts = pieceCounts
        self.segments = segments
    }

    /// Sums `gradients` over the group, each piece into its owner's copy (a reduce-scatter per
    /// block): afterwards rank r's pieces hold the sums, the rest of its buffer is stale.
    public func reduceToOwners(_ gradients: TensorBuffer, group: TrainingGroup) {
        for (block, counts) in zip(blocks, pieceCounts) {
            group.reduceScatterSum(gradients.slice(block.lowerBound, block.count), counts: counts)
        }
    }

    /// Gives every rank each owner's pieces of `parameters` (an all-gather per block).
    public func broadcastFromOwners(_ parameters: TensorBuffer, group: TrainingGroup) {
        for (block, counts) in zip(blocks, pieceCounts) {
            group.allGather(parameters.slice(block.lowerBound, block.count), counts: counts)
        }
    }

    /// Assembles elements `range` of the whole buffer into `target` on `root` (`range.count`
    /// values; nil elsewhere), where each rank holds `packed`: the values of its own ``segments``,
    /// one after another (as a sharded ``AdamW`` keeps its moments). A gather of one piece, such as
    /// one tensor of the moments, so that root never needs the whole buffer.
    public func gather(_ range: Range<Int>, of packed: TensorBuffer, into target: UnsafeMutableBufferPointer<Float>?, root: Int,
                       group: TrainingGroup) {
        let rank = group.rank
        for owner in segments.indices where owner == rank || rank == root {
            var offset = 0  // where a segment's values start in the owner's packed buffer
            for segment in segments[owner] {
                defer { offset += segment.count }
                let part = segment.clamped(to: range)
                guard !part.isEmpty else { continue }
                let source = offset + part.lowerBound - segment.lowerBound
                if rank == root {
                    guard let target else { preconditionFailure("OptimizerShards.gather: the root needs a target") }
                    let destination = UnsafeMutableBufferPointer(rebasing: target[(part.lowerBound - range.lowerBound)..<(part.upperBound - range.lowerBound)])
                    if owner == root {
                        _ = destination.update(fromContentsOf: packed.view(source, part.count))
                    } else {
                        group.receive(destination, from: owner)
                    }
                } else {
                    group.send(packed.view(source, part.count), to: root)
                }
            }
        }
    }
}
