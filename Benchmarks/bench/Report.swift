import Foundation

/// One row of results.
struct BenchResult: Codable {
    let name: String
    let detail: String
    let medianSeconds: Double
    let minSeconds: Double
    let maxSeconds: Double
    let runs: Int
    /// Counted FLOPs per run ÷ median seconds ÷ 1e9.
    let gflops: Double?
    /// Raw-sgemm seconds for this case's GEMMs ÷ this case's median seconds.
    let fractionOfSgemm: Double?
    let tokensPerSecond: Double?
    /// tokens/s ÷ (streaming read rate ÷ weight bytes per token), for decode.
    let fractionOfBandwidthBound: Double?
    let megabytesPerSecond: Double?
    /// Naive reference median ÷ this case's median, where timed.
    let speedupOverNaive: Double?
    let check: String
}

struct BenchReport: Codable {
    let date: String
    let cores: Int
    let threads: Int
    let blasCore: String
    /// The 8-bit interleaved products' instruction path ("AVX-512 VNNI", "AVX2"), nil where none.
    let interleavedPath: String?
    let quick: Bool
    let peakResidentBytes: Int
    /// Streaming read rate measured in this run (bytes/s), when a decode case ran.
    let readBytesPerSecond: Double?
    let results: [BenchResult]
    let sgemm: [SgemmRow]

    struct SgemmRow: Codable {
        let shape: String
        let medianSeconds: Double
        let gflops: Double
    }
}

enum Table {
    /// Renders rows as an aligned text table, numbers right-aligned.
    static func render(header: [String], rows: [[String]]) -> String {
        let widths = header.indices.map { column in
            ([header[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column < 2 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }

    static func milliseconds(_ seconds: Double) -> String { String(format: "%.3f", seconds * 1e3) }
    static func number(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "" }

    static func results(_ results: [BenchResult]) -> String {
        render(
            header: ["benchmark", "shape", "median ms", "min ms", "max ms", "GFLOP/s", "% sgemm", "tokens/s", "% mem bound", "MB/s", "× naive", "check"],
            rows: results.map { r in
                [r.name, r.detail, milliseconds(r.medianSeconds), milliseconds(r.minSeconds), milliseconds(r.maxSeconds),
                 number(r.gflops, "%.1f"), number(r.fractionOfSgemm.map { $0 * 100 }, "%.0f%%"),
                 number(r.tokensPerSecond, "%.0f"), number(r.fractionOfBandwidthBound.map { $0 * 100 }, "%.0f%%"),
                 number(r.megabytesPerSecond, "%.2f"),
                 number(r.speedupOverNaive, "%.0f"), r.check]
            })
    }

    static func sgemm(_ rows: [BenchReport.SgemmRow]) -> String {
        render(header: ["raw cblas_sgemm", "", "median ms", "GFLOP/s"],
               rows: rows.map { [$0.shape, "", milliseconds($0.medianSeconds), String(format: "%.1f", $0.gflops)] })
    }
}
