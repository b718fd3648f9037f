import Foundation
import Kernels
import Model
#if MPI
import DataParallel
#endif

/// How `lm train` joins the processes an MPI launcher started (`mpirun -np N lm train …`): with
/// the package's `MPI` trait it trains data-parallel over them; without it, refuses to start
/// rather than let N processes each train alone into one run directory.
struct DataParallelLaunch {
    let parallelism: DataParallelism
    #if MPI
    private let mpi: MPIGroup?
    #endif

    var rank: Int { parallelism.group.rank }
    var ranks: Int { parallelism.group.size }

    /// Joins the MPI job when there is one (and sets this rank's threads: the machine's cores
    /// shared by the ranks on it, unless --threads or LM_THREADS says otherwise).
    init(shardOptimizerState: Bool, threadsGiven: Bool) throws {
        #if MPI
        if MPIGroup.isLaunchedByMPI {
            // LM_MPI_BUCKET_ELEMENTS: the most values per MPI call (default 2^20; tests use small ones).
            var bucket = 1 << 20
            if let text = ProcessInfo.processInfo.environment["LM_MPI_BUCKET_ELEMENTS"] {
                guard let value = Int(text), value >= 1, value <= Int(Int32.max) else {
                    throw ModelError("LM_MPI_BUCKET_ELEMENTS must be an integer in 1...\(Int32.max), got '\(text)'")
                }
                bucket = value
            }
            let group = MPIGroup(bucketElements: bucket)
            mpi = group
            parallelism = DataParallelism(group: group, shardsOptimizerState: shardOptimizerState)
            // mpirun binds each rank to one core by default (with 2 ranks or fewer per machine):
            // more threads than the CPUs a rank may run on would only take turns on them.
            let share = max(1, ProcessInfo.processInfo.activeProcessorCount / group.localSize)
            let allowed = Self.allowedCPUCount() ?? share
            if !threadsGiven, Threading.environmentThreadCount() == nil {
                Threading.count = max(1, min(share, allowed))
            }
            if allowed < share {
                printError("warning: rank \(group.rank) may run on \(allowed) CPU\(allowed == 1 ? "" : "s") (mpirun's binding), but \(share) cores of this machine are its share; start mpirun with --bind-to none (or --map-by ppr:1:node:pe=N) so that its threads can use them")
            }
            return
        }
        mpi = nil
        #else
        let environment = ProcessInfo.processInfo.environment
        if let size = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"].lazy.compactMap({ environment[$0].flatMap { Int($0) } }).first, size > 1 {
            throw ModelError("lm was started as one of \(size) MPI processes, but this build has no MPI: each would train alone. Build it with the MPI trait (scripts/setup.sh --mpi && swift build -c release --traits MPI) and run that lm under mpirun")
        }
        #endif
        parallelism = DataParallelism(group: SingleProcessGroup(), shardsOptimizerState: shardOptimizerState)
    }

    /// Runs `body`; on an error, stops every rank: an error all ranks met together is reported
    /// once (by rank 0) and each rank leaves MPI cleanly; an error of one rank alone is reported
    /// with its rank and aborts the job, since the others wait for it in a collective operation.
    func run(_ body: () throws -> Void) throws {
        #if MPI
        guard let mpi else {
            try body()
            return
        }
        do {
            try body()
            mpi.finalize()
        } catch let error as ModelError where error.isCollective || mpi.size == 1 {
            if mpi.rank == 0 { printError("Error: \(error.message)") }
            mpi.finalize()
            exit(1)
        } catch where mpi.size == 1 {
            printError("Error: \(error)")
            mpi.finalize()
            exit(1)
        } catch {
            printError("Error: rank \(mpi.rank) of \(mpi.size): \(error)")
            mpi.abort(code: 1)
        }
        #else
        try body()
        #endif
    }

    /// The CPUs this process may run on (its affinity mask, which mpirun sets when it binds
    /// ranks), or nil when it cannot be read.
    static func allowedCPUCount() -> Int? {
        // Swift's Glibc module does not export sched_getaffinity (a _GNU_SOURCE function); the
        // kernel shows the same mask as hex words in /proc/self/status ("Cpus_allowed: ff,ffffffff").
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return nil }
        let words = line.dropFirst("Cpus_allowed:".count).trimmingCharacters(in: .whitespaces).split(separator: ",")
        let count = words.reduce(0) { $0 + (UInt64($1, radix: 16)?.nonzeroBitCount ?? 0) }
        return count > 0 ? count : nil
    }

    /// Each rank's peak resident memory in bytes, in rank order (on every rank).
    func peakResidentBytesPerRank() -> [UInt64] {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return parallelism.group.allGather(UInt64(usage.ru_maxrss) * 1024)
    }
}
