import Drawing
import Foundation
import Kernels
import TensorIO

/// The files of a training run, and nothing else of training: `config.json`, `model.safetensors`
/// and the tokenizer files (so that `lm generate --model RUN` works on it), `optimizer.safetensors`
/// (both AdamW moments), `training_state.json` (step, sampler state, options), `metrics.jsonl` and
/// `loss.svg`. Every file is written to a temporary name and renamed; `training_state.json` goes
/// last and the step is recorded in the weights and moments too, so a checkpoint cut short is
/// detected.
struct RunDirectory {
    static let stateFile = "training_state.json", optimizerFile = "optimizer.safetensors"
    static let metricsFile = "metrics.jsonl", plotFile = "loss.svg"

    let path: String

    /// The path of `name` inside the run directory.
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Whether `directory` already holds a run (a checkpoint's `training_state.json`).
    static func hasRun(in directory: String) -> Bool {
        FileManager.default.fileExists(atPath: RunDirectory(path: directory).file(stateFile))
    }

    /// Creates the directory (and its parents) when missing.
    func create() throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ModelError("\(path): cannot create the run directory: \(SystemErrorText.describe(error))")
        }
    }

    /// The state of the last checkpoint.
    func readState() throws -> TrainingState {
        let statePath = file(Self.stateFile)
        guard let data = FileManager.default.contents(atPath: statePath) else {
            throw ModelError("\(path): no \(Self.stateFile) here; not a run directory, or no checkpoint was written yet")
        }
        do { return try JSONDecoder().decode(TrainingState.self, from: data) } catch {
            throw ModelError("\(statePath): not a training state (\(error))")
        }
    }

    /// Writes the state, last of a checkpoint's files.
    func writeState(_ state: TrainingState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try mapFileErrors { try AtomicFile.write(try encoder.encode(state), to: file(Self.stateFile)) }
    }

    /// The evaluation and logging records written so far (none before the first).
    func readRecords() throws -> [TrainingRecord] {
        let metricsPath = file(Self.metricsFile)
        return try FileManager.default.contents(atPath: metricsPath).map { try TrainingRecord.parse(jsonLines: $0, path: metricsPath) } ?? []
    }

    /// `metrics.jsonl` and `loss.svg`, rewritten whole (atomically) so either can be opened mid-run.
    func writeMetrics(_ records: [TrainingRecord]) throws {
        try mapFileErrors {
            try AtomicFile.write(try TrainingRecord.jsonLines(records), to: file(Self.metricsFile))
            let train = records.map { (step: $0.step, loss: $0.trainLoss) }
            let validation = records.compactMap { record in record.valLoss.map { (step: record.step, loss: $0) } }
            let title = "\(URL(fileURLWithPath: path).lastPathComponent): loss per token"
            try AtomicFile.write(Data(LossPlot.svg(train: train, validation: validation, title: title).utf8), to: file(Self.plotFile))
        }
    }

    /// The model's weights and configuration, tagged with the step they were written at.
    func writeModel(_ model: TransformerLM, step: Int) throws {
        try Checkpoint.write(model.parameters, layout: model.layout, metadata: ["format": "pt", "step": String(step)],
                             to: file(Checkpoint.weightsFile))
        try model.config.save(path: file(Checkpoint.configFile))
    }

    /// Stops unless the safetensors file `name` was written at `step` (a checkpoint cut short
    /// between its files is caught here).
    func checkStep(of name: String, is step: Int) throws {
        let filePath = file(name)
        let stored = try mapFileErrors { try SafeTensorsFile(path: filePath) }
        guard stored.metadata["step"] == String(step) else {
            throw ModelError("\(filePath): written at step \(stored.metadata["step"] ?? "?"), but \(Self.stateFile) says step \(step): the last checkpoint was cut short")
        }
    }

    /// The saved moments of the parameters in `segments` (see ``Checkpoint/readMoments(_:layout:segments:first:second:)``).
    func readMoments(layout: ParameterLayout, segments: [Range<Int>], first: TensorBuffer, second: TensorBuffer) throws {
        let moments = try mapFileErrors { try SafeTensorsFile(path: file(Self.optimizerFile)) }
        try Checkpoint.readMoments(moments, layout: layout, segments: segments, first: first, second: second)
    }

    private func mapFileErrors<T>(_ body: () throws -> T) throws -> T { try Checkpoint.mapFileErrors(body) }
}
