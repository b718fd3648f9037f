import COpenBLAS
import Foundation

/// Which OpenBLAS compute kernels are in use, and the settings this package runs it with.
///
/// OpenBLAS reads its settings from the environment when it is loaded, so the only way to change
/// them from inside is to start again with them set: ``restartWithRecommendedSettingsIfNeeded()``,
/// which the `lm` and `bench` executables call first. A value the user (or the machine) already
/// set is always respected. The settings:
/// - `OPENBLAS_CORETYPE`: Debian's OpenBLAS 0.3.21 predates recent Xeons (for example family 6
///   model 207) and falls back to its SSE3 "Prescott" kernels there, far slower than the AVX-512
///   ones the CPU can run (README, "OpenBLAS settings").
/// - `OPENBLAS_THREAD_TIMEOUT`: after each call OpenBLAS's workers spin for 2^timeout cycles
///   before sleeping. The default, 2^28 (about 0.1 s), leaves a spinning worker competing with our
///   own row-parallel loops (softmax, attention heads, norms) on a small machine; 2^18 (about
///   0.1 ms) keeps the workers awake across back-to-back decode GEMVs yet lets them sleep during
///   our loops.
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

    /// The worker spin time we run OpenBLAS with, as a power of two of cycles.
    public static let recommendedThreadTimeout = 18

    /// The OpenBLAS settings this process should have but does not: variables already set are
    /// never overridden.
    public static func recommendedEnvironment() -> [String: String] {
        var settings: [String: String] = [:]
        if let core = recommendedCoreType() { settings["OPENBLAS_CORETYPE"] = core }
        if ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] == nil {
            settings["OPENBLAS_THREAD_TIMEOUT"] = String(recommendedThreadTimeout)
        }
        return settings
    }

    /// For executables, before any work: when ``recommendedEnvironment()`` is not empty,
    /// re-executes this program with those variables set (once; a marker variable prevents
    /// loops). Returns normally when nothing needs doing or the restart is impossible.
    public static func restartWithRecommendedSettingsIfNeeded() {
        let marker = "LM_BLAS_SETTINGS_APPLIED"
        guard ProcessInfo.processInfo.environment[marker] == nil else { return }
        let settings = recommendedEnvironment()
        guard !settings.isEmpty else { return }
        for (key, value) in settings { setenv(key, value, 1) }
        setenv(marker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv only returns on failure: carry on with the settings we have.
        for key in settings.keys { unsetenv(key) }
    }

    /// The CPU feature flags from /proc/cpuinfo (empty where it cannot be read).
    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}
