#if MPI
import CMPI
import Foundation
import Model

/// ``TrainingGroup`` over MPI's world communicator: the processes `mpirun -np N` started.
/// Buffers are moved in buckets of at most ``bucketElements`` values (MPI counts are 32-bit,
/// and an implementation's temporary copies stay bounded by a bucket, not by the model).
/// MPI's default error handler is kept: a failed communication, or a rank that died, ends every
/// rank of the job.
public final class MPIGroup: TrainingGroup {
    public let rank: Int
    public let size: Int
    /// Processes of this job on this machine (MPI's shared-memory split of the world).
    public let localSize: Int
    /// The most values moved in one MPI call.
    public let bucketElements: Int
    private let world: MPI_Comm?
    /// Where sharded exchanges receive a piece (see ``reduceScatterSum(_:counts:)``).
    private var staging: UnsafeMutableBufferPointer<Float>?

    /// Initialises MPI (once per process, on the thread that will make every MPI call).
    public init(bucketElements: Int = 1 << 20) {
        precondition(bucketElements >= 1 && bucketElements <= Int(Int32.max), "MPIGroup: bucket of \(bucketElements) values")
        var provided: Int32 = 0
        // Only the main thread calls MPI; the worker threads never do.
        MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided)
        world = lm_mpi_comm_world()
        var value: Int32 = 0
        MPI_Comm_rank(world, &value)
        rank = Int(value)
        MPI_Comm_size(world, &value)
        size = Int(value)
        var local: MPI_Comm? = lm_mpi_comm_null()
        MPI_Comm_split_type(world, lm_mpi_comm_type_shared(), Int32(rank), lm_mpi_info_null(), &local)
        MPI_Comm_size(local, &value)
        localSize = Int(value)
        MPI_Comm_free(&local)
        self.bucketElements = bucketElements
    }

    /// Whether this process was started by an MPI launcher (`mpirun`, `srun`, …) as part of a
    /// job, from the variables launchers set; no MPI call is made.
    public static var isLaunchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"].contains { environment[$0] != nil }
    }

    deinit { staging?.deallocate() }

    /// Ends MPI cleanly: every rank calls it once, after its last collective operation.
    public func finalize() {
        MPI_Finalize()
    }

    /// Ends every rank of the job at once with `code` (a failure on this rank alone, which the
    /// others, waiting in a collective operation, could never learn of otherwise).
    public func abort(code: Int32) -> Never {
        MPI_Abort(world, code)
        exit(code)
    }

    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) {
        forEachBucket(values) { start, count in
            MPI_Allreduce(lm_mpi_in_place(), start, count, lm_mpi_float(), lm_mpi_sum(), world)
        }
    }

    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Double>) {
        forEachBucket(values) { start, count in
            MPI_Allreduce(lm_mpi_in_place(), start, count, lm_mpi_double(), lm_mpi_sum(), world)
        }
    }

    /// `MPI_Reduce_scatter` from the block into a piece-sized buffer, then this rank's piece
    /// is copied back in place (a bucket is at most ``bucketElements`` values, so is the piece).
    public func reduceScatterSum(_ block: UnsafeMutableBufferPointer<Float>, counts: [Int]) {
        precondition(counts.count == size && counts.reduce(0, +) == block.count && block.count <= bucketElements,
                     "MPIGroup.reduceScatterSum: pieces \(counts) of a block of \(block.count) values for \(size) ranks")
        guard let base = block.baseAddress else { return }
        let piece = stagingPiece()
        let counts32 = counts.map { Int32($0) }
        MPI_Reduce_scatter(base, piece, counts32, lm_mpi_float(), lm_mpi_sum(), world)
        let own = counts[..<rank].reduce(0, +)
        (base + own).update(from: piece, count: counts[rank])
    }

    /// `MPI_Allgatherv` in place: each rank's piece is already where the others need it.
    public func allGather(_ block: UnsafeMutableBufferPointer<Float>, counts: [Int]) {
        precondition(counts.count == size && counts.reduce(0, +) == block.count && block.count <= bucketElements,
                     "MPIGroup.allGather: pieces \(counts) of a block of \(block.count) values for \(size) ranks")
        guard let base = block.baseAddress else { return }
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<size { displacements[r] = displacements[r - 1] + Int32(counts[r - 1]) }
        MPI_Allgatherv(lm_mpi_in_place(), 0, lm_mpi_float(), base, counts.map { Int32($0) }, displacements, lm_mpi_float(), world)
    }

    /// Where a reduce-scatter receives this rank's piece, allocated at the first one and kept.
    private func stagingPiece() -> UnsafeMutablePointer<Float> {
        if staging == nil { staging = .allocate(capacity: bucketElements) }
        return staging!.baseAddress!
    }

    public func send(_ values: UnsafeBufferPointer<Float>, to destination: Int) {
        forEachBucket(UnsafeMutableBufferPointer(mutating: values)) { start, count in
            MPI_Send(start, count, lm_mpi_float(), Int32(destination), 0, world)
        }
    }

    public func receive(_ values: UnsafeMutableBufferPointer<Float>, from source: Int) {
        forEachBucket(values) { start, count in
            MPI_Recv(start, count, lm_mpi_float(), Int32(source), 0, world, lm_mpi_status_ignore())
        }
    }

    public func allGather(_ value: UInt64) -> [UInt64] {
        var mine = value
        var all = [UInt64](repeating: 0, count: size)
        all.withUnsafeMutableBufferPointer { buffer in
            _ = MPI_Allgather(&mine, 1, lm_mpi_uint64(), buffer.baseAddress, 1, lm_mpi_uint64(), world)
        }
        return all
    }

    /// `body(start, count)` over consecutive pieces of at most ``bucketElements`` values.
    private func forEachBucket<T>(_ values: UnsafeMutableBufferPointer<T>, _ body: (UnsafeMutablePointer<T>, Int32) -> Int32) {
        guard let base = values.baseAddress else { return }
        var offset = 0
        while offset < values.count {
            let count = min(bucketElements, values.count - offset)
            _ = body(base + offset, Int32(count))
            offset += count
        }
    }
}
#endif
