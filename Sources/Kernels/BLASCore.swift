import COpenBLAS
import Foundation

/// Which OpenBLAS compute kernels are in use, and a remedy when the library does not know the CPU.
///
/// Debian's OpenBLAS 0.3.21 predates recent Xeons (for example family 6 model 207) and falls back
/// to its SSE3 "Prescott" kernels there, about six times slower than the AVX-512 ones the CPU
/// can run. OpenBLAS picks its kernels when it is loaded, from `OPENBLAS_CORETYPE`, so the only
/// fix from inside is to start again with that variable set: ``restartWithRecommendedCoreIfNeeded()``,
/// which the `lm` and `bench` executables call first. A value the user (or the machine) already
/// set is always respected.
public enum BLASCore {
    /// The kernel family OpenBLAS chose, e.g. "SkylakeX", "Haswell", "Prescott".
    public static var name: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's build description (version, DYNAMIC_ARCH, thread limit).
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The `OPENBLAS_CORETYPE` this CPU should use, or nil when OpenBLAS already chose well, the
    /// variable is set, or the CPU offers nothing better.
    public static func recommendedCoreType() -> String? {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        // Only the generic fallbacks are overridden; a core OpenBLAS recognised is left alone.
        guard ["Prescott", "Core2", "Nehalem", "Sandybridge", "Katmai", "Northwood"].contains(name) else { return nil }
        let flags = cpuFlags()
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains), name != "Haswell" { return "Haswell" }
        return nil
    }

    /// For executables, before any work: when ``recommendedCoreType()`` names a better kernel
    /// family, re-executes this program with `OPENBLAS_CORETYPE` set (once; a marker variable
    /// prevents loops). Returns normally when nothing needs doing or the restart is impossible.
    public static func restartWithRecommendedCoreIfNeeded() {
        let marker = "LM_BLAS_CORE_RESTARTED"
        guard ProcessInfo.processInfo.environment[marker] == nil, let core = recommendedCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(marker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv only returns on failure: carry on with the kernels we have.
        unsetenv("OPENBLAS_CORETYPE")
    }

    /// The CPU feature flags from /proc/cpuinfo (empty where it cannot be read).
    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}
