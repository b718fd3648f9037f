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
    /// The bucket that sharded exchanges pack pieces into (see ``reduceScatterSum(_:ranges:)``).
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

    /// In rounds: round k takes the k-th piece of at most `bucketElements / size` values of every
    /// rank's range, packs them side by side into one bucket and reduce-scatters it, so MPI sees
    /// contiguous buffers and no temporary exceeds a bucket.
    public func reduceScatterSum(_ values: UnsafeMutableBufferPointer<Float>, ranges: [Range<Int>]) {
        precondition(ranges.count == size, "MPIGroup.reduceScatterSum: \(ranges.count) ranges for \(size) ranks")
        guard let base = values.baseAddress else { return }
        let (bucket, result) = stagingBuffers()
        forEachRound(ranges) { offset, counts, displacements in
            for (r, range) in ranges.enumerated() where counts[r] > 0 {
                (bucket + Int(displacements[r])).update(from: base + range.lowerBound + offset, count: Int(counts[r]))
            }
            MPI_Reduce_scatter(bucket, result, counts, lm_mpi_float(), lm_mpi_sum(), world)
            if counts[rank] > 0 { (base + ranges[rank].lowerBound + offset).update(from: result, count: Int(counts[rank])) }
        }
    }

    /// In rounds, like ``reduceScatterSum(_:ranges:)``: each rank's piece goes into its place in
    /// one bucket, the bucket is all-gathered, and every piece is copied back to its range.
    public func allGather(_ values: UnsafeMutableBufferPointer<Float>, ranges: [Range<Int>]) {
        precondition(ranges.count == size, "MPIGroup.allGather: \(ranges.count) ranges for \(size) ranks")
        guard let base = values.baseAddress else { return }
        let (bucket, _) = stagingBuffers()
        forEachRound(ranges) { offset, counts, displacements in
            if counts[rank] > 0 {
                (bucket + Int(displacements[rank])).update(from: base + ranges[rank].lowerBound + offset, count: Int(counts[rank]))
            }
            MPI_Allgatherv(lm_mpi_in_place(), 0, lm_mpi_float(), bucket, counts, displacements, lm_mpi_float(), world)
            for (r, range) in ranges.enumerated() where r != rank && counts[r] > 0 {
                (base + range.lowerBound + offset).update(from: bucket + Int(displacements[r]), count: Int(counts[r]))
            }
        }
    }

    /// `body(offset, counts, displacements)` for each round over `ranges`: round k covers values
    /// `offset..<offset + piece` of every range (counts clipped at each range's end), packed at
    /// `displacements` in the bucket.
    private func forEachRound(_ ranges: [Range<Int>], _ body: (Int, [Int32], [Int32]) -> Void) {
        let piece = max(1, bucketElements / size)
        let longest = ranges.map(\.count).max() ?? 0
        var counts = [Int32](repeating: 0, count: size), displacements = counts
        for offset in stride(from: 0, to: longest, by: piece) {
            var packed: Int32 = 0
            for (r, range) in ranges.enumerated() {
                counts[r] = Int32(max(0, min(piece, range.count - offset)))
                displacements[r] = packed
                packed += counts[r]
            }
            body(offset, counts, displacements)
        }
    }

    /// A bucket and a piece, allocated at the first sharded exchange and kept.
    private func stagingBuffers() -> (bucket: UnsafeMutablePointer<Float>, result: UnsafeMutablePointer<Float>) {
        if staging == nil {
            let piece = max(1, bucketElements / size)
            staging = UnsafeMutableBufferPointer<Float>.allocate(capacity: piece * size + piece)
        }
        let base = staging!.baseAddress!
        return (base, base + max(1, bucketElements / size) * size)
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

    /// Every rank's `value`, summed (a convenience for reports).
    public func sum(_ value: Double) -> Double {
        var values = [value]
        values.withUnsafeMutableBufferPointer { allReduceSum($0) }
        return values[0]
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
