import ArgumentParser
import Foundation
import Kernels

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Times every GEMM-bound layer against raw cblas_sgemm and the naive references.",
        discussion: """
        Each benchmark is checked against its plain-loop reference before it is timed. GFLOP/s \
        counts 2·m·n·k per GEMM (attention: the causal blocks actually multiplied); '% sgemm' is \
        the time raw cblas_sgemm needs for the same GEMM shapes, measured in this run, divided by \
        the benchmark's median time.
        """)

    @Flag(help: "A short run (CI): fewer repetitions and a shorter minimum time.")
    var quick = false

    @Option(help: "Run only benchmarks whose name contains this text or matches this regular expression.")
    var filter: String?

    @Option(help: "Threads for OpenBLAS and our loops (default: LM_THREADS or every core).")
    var threads: Int?

    @Flag(help: "List the benchmark names and exit.")
    var list = false

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    @Option(help: "Text for the tokenizer benchmarks (default: the KJV Bible from the bible program, else a fixture).")
    var corpus: String?

    static func main() {
        BLASCore.restartWithRecommendedSettingsIfNeeded()
        main(nil)
    }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if let filter, filter.isEmpty { throw ValidationError("--filter must not be empty") }
    }

    func run() throws {
        if let threads { Threading.count = threads }
        let plan: MeasurementPlan = quick ? .quick : .full
        let shape = BenchShape()
        let matcher = try filter.map { try NameFilter($0) }
        let cases = (KernelCases.all(shape) + MatrixVectorCases.all() + QuantizedMatrixVectorCases.all() + ModelCases.all(shape, quick: quick) + QuantizedModelCases.all(quick: quick) + BatchDecodeCases.all(quick: quick) + DecodeAttentionCases.all(quick: quick) + TrainingCases.all(shape, quick: quick) + LoRACases.all(quick: quick) + LongAttentionCases.all(quick: quick)
                     + NaiveCases.all(shape, plan: plan)
                     + TokenizerCases.all(quick: quick, corpusPath: corpus))
            .filter { matcher?.matches($0.name) ?? true }
        if list {
            cases.forEach { print($0.name) }
            return
        }
        guard !cases.isEmpty else { throw ValidationError("no benchmark matches --filter '\(filter ?? "")' (see --list)") }

        let ceiling = GemmCeiling(plan: plan)
        // Streaming read rates: over a buffer far larger than any cache (reported for context),
        // and, per decode case, over a buffer the size of its weights (the bound it is held to).
        let dramRate: Double? = cases.contains { $0.weightBytesPerToken != nil }
            ? MemoryBandwidth.readBytesPerSecond(bytes: 1 << 30, plan: plan) : nil
        var results: [BenchResult] = []
        var boundRates: [(name: String, bytes: Int, rate: Double)] = []
        var modelRates: [String] = []
        for benchCase in cases {
            FileHandle.standardError.write("bench: \(benchCase.name)\n".data(using: .utf8)!)
            let prepared: Prepared
            do {
                prepared = try benchCase.prepare()
            } catch {
                throw ValidationError("\(benchCase.name): \(error)")
            }
            let timing: Timing
            var ideal: Double?
            if benchCase.gemms.isEmpty {
                timing = plan.measure(prepared.run)
            } else {
                let raw = RawGemms(benchCase.gemms)
                let (caseTiming, rawTiming) = plan.measureAlternating(prepared.run, raw.run)
                timing = caseTiming
                ideal = rawTiming.median
                benchCase.gemms.keys.forEach { _ = ceiling.seconds($0) }  // per-shape rates for the table
            }
            let median = timing.median
            let flops = benchCase.flops
            if let perToken = benchCase.modelFlopsPerToken, let tokens = benchCase.tokens, let ideal {
                let modelRate = perToken * Double(tokens) / median, ceilingRate = flops / ideal
                modelRates.append(String(format: "%@: %.1f MFLOP/token (model count) → %.1f GFLOP/s; raw sgemm on the same GEMM shapes %.1f GFLOP/s → %.0f%%",
                                         benchCase.name, perToken / 1e6, modelRate / 1e9, ceilingRate / 1e9, 100 * modelRate / ceilingRate))
            }
            results.append(BenchResult(
                name: benchCase.name, detail: benchCase.detail,
                medianSeconds: median, minSeconds: timing.min, maxSeconds: timing.max, runs: timing.samples.count,
                gflops: flops > 0 ? flops / median / 1e9 : nil,
                fractionOfSgemm: ideal.map { $0 / median },
                tokensPerSecond: benchCase.tokens.map { Double($0) / median },
                fractionOfBandwidthBound: benchCase.weightBytesPerToken.map { bytes in
                    let rate = MemoryBandwidth.readBytesPerSecond(bytes: bytes, plan: plan)
                    boundRates.append((benchCase.name, bytes, rate))
                    return Double(benchCase.tokens ?? 0) / median / (rate / Double(bytes))
                },
                megabytesPerSecond: benchCase.bytes.map { Double($0) / median / 1e6 },
                speedupOverNaive: prepared.referenceSeconds.map { $0 / median },
                check: prepared.check))
        }
        let sgemmRows = ceiling.timings.map { shape, timing in
            BenchReport.SgemmRow(shape: shape.description, medianSeconds: timing.median, gflops: shape.flops / timing.median / 1e9)
        }
        let report = BenchReport(
            date: ISO8601DateFormatter().string(from: Date()), cores: ProcessInfo.processInfo.activeProcessorCount,
            threads: Threading.count, blasCore: BLASCore.name, interleavedPath: QuantizedProductPath.interleavedName, quick: quick, peakResidentBytes: peakResidentBytes(),
            readBytesPerSecond: dramRate, results: results, sgemm: sgemmRows)

        print("bench: \(report.date), \(report.cores) cores, \(report.threads) threads, OpenBLAS \(BLASCore.name) kernels, 8-bit interleaved products \(QuantizedProductPath.interleavedName ?? "none"), thread timeout \(ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"].map { "2^" + $0 } ?? "default")\(quick ? ", quick run" : ""); medians over ≥\(plan.minimumRuns) runs and ≥\(plan.minimumSeconds) s each")
        print(Table.results(results))
        if !sgemmRows.isEmpty {
            print()
            print(Table.sgemm(sgemmRows))
        }
        print()
        modelRates.forEach { print($0) }
        for bound in boundRates {
            print(String(format: "%@: %.1f MB of weights per token, streamed at %.1f GB/s → bound %.0f tokens/s",
                         bound.name, Double(bound.bytes) / 1e6, bound.rate / 1e9, bound.rate / Double(bound.bytes)))
        }
        if let dramRate {
            print(String(format: "streaming read rate from DRAM (1 GiB buffer): %.1f GB/s", dramRate / 1e9))
        }
        print(String(format: "peak resident memory: %.1f MiB", Double(report.peakResidentBytes) / 1_048_576))
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: json), options: .atomic)
        }
    }
}

/// `--filter`: a substring, or a regular expression when the text is one.
struct NameFilter {
    let text: String
    let expression: NSRegularExpression?

    init(_ text: String) throws {
        self.text = text
        expression = try? NSRegularExpression(pattern: text)
    }

    func matches(_ name: String) -> Bool {
        if name.contains(text) { return true }
        guard let expression else { return false }
        return expression.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
    }
}

