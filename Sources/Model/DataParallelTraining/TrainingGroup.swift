import Kernels

/// The processes ("ranks") that train one model together by data parallelism: each runs the
/// same ``Trainer`` on its own rows of every batch, and the group combines what they computed.
/// ``SingleProcessGroup`` is the group of one; the `DataParallel` module (built with the package's
/// `MPI` trait) implements it over MPI.
///
/// Every method is collective: all ranks call it, in the same order, with the same sizes and
/// roots. An implementation moves large buffers in bounded pieces ("buckets"), so a large model
/// never needs a second full-size buffer.
public protocol TrainingGroup: AnyObject {
    /// This process's index, `0..<size`. Rank 0 writes the run's files.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// The most values an implementation moves in one operation; sharded optimizer blocks are
    /// this size (see ``OptimizerShards``).
    var bucketElements: Int { get }
    /// Replaces `values` on every rank with their elementwise sum over the ranks.
    func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>)
    /// The same for a few Doubles (losses, flags, squared norms).
    func allReduceSum(_ values: UnsafeMutableBufferPointer<Double>)
    /// A reduce-scatter in place: `block` is cut into consecutive pieces of `counts[r]` values
    /// (rank order; the same on every rank); rank r's piece becomes the sum over the ranks of
    /// that piece, the other pieces are left unspecified. At most ``bucketElements`` values.
    func reduceScatterSum(_ block: UnsafeMutableBufferPointer<Float>, counts: [Int])
    /// An all-gather in place: every rank's piece r of `block` (cut as above) becomes rank r's.
    func allGather(_ block: UnsafeMutableBufferPointer<Float>, counts: [Int])
    /// Sends `values` to rank `destination`, which calls ``receive(_:from:)`` with the same count.
    func send(_ values: UnsafeBufferPointer<Float>, to destination: Int)
    /// Receives what rank `source` sends with ``send(_:to:)``.
    func receive(_ values: UnsafeMutableBufferPointer<Float>, from source: Int)
    /// Every rank's `value`, in rank order, on every rank.
    func allGather(_ value: UInt64) -> [UInt64]
}

/// One process training alone: every collective operation is the identity.
public final class SingleProcessGroup: TrainingGroup {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var bucketElements: Int { 1 << 20 }
    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) {}
    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Double>) {}
    public func reduceScatterSum(_ block: UnsafeMutableBufferPointer<Float>, counts: [Int]) {}
    public func allGather(_ block: UnsafeMutableBufferPointer<Float>, counts: [Int]) {}
    public func send(_ values: UnsafeBufferPointer<Float>, to destination: Int) {
        preconditionFailure("SingleProcessGroup: no rank \(destination) to send to")
    }
    public func receive(_ values: UnsafeMutableBufferPointer<Float>, from source: Int) {
        preconditionFailure("SingleProcessGroup: no rank \(source) to receive from")
    }
    public func allGather(_ value: UInt64) -> [UInt64] { [value] }
}

/// How a ``Trainer`` shares its work: the group, and whether the AdamW moments are sharded
/// (ZeRO stage 1, as llm.c does it: each rank keeps and updates the moments of its own slice of
/// the parameters; the gradients are reduce-scattered to the slices' owners, and the updated
/// slices all-gathered). Without sharding every rank keeps both moments whole and applies the same
/// update to the same averaged gradients.
public struct DataParallelism {
    public let group: TrainingGroup
    public let shardsOptimizerState: Bool

    public init(group: TrainingGroup, shardsOptimizerState: Bool = false) {
        self.group = group
        self.shardsOptimizerState = shardsOptimizerState
    }

    /// One process, nothing shared.
    public static var none: DataParallelism { DataParallelism(group: SingleProcessGroup()) }
}
