import Foundation
import Kernels
import TensorIO

/// One checkpoint's files in one folder: `model.safetensors` and `config.json` (a model
/// directory `Checkpoint.load` reads), `optimizer.safetensors` (both AdamW moments) and
/// `training_state.json` (step, sampler state, options, what the weights were). The weights and
/// moments record their step too, so files of different checkpoints are never taken for one.
struct CheckpointFolder {
    static let stateFile = "training_state.json", optimizerFile = "optimizer.safetensors"
    /// Every file of a checkpoint: of a model's, or of a LoRA adapter's.
    static let files = [Checkpoint.weightsFile, Checkpoint.configFile, optimizerFile, stateFile]
    static let adapterFiles = [PEFTAdapter.weightsFile, PEFTAdapter.configFile, optimizerFile, stateFile]

    let path: String

    /// The path of `name` inside the folder.
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Whether the folder holds a training state (a checkpoint's last file).
    var hasState: Bool { FileManager.default.fileExists(atPath: file(Self.stateFile)) }

    func readState() throws -> TrainingState {
        let statePath = file(Self.stateFile)
        guard let data = FileManager.default.contents(atPath: statePath) else {
            throw ModelError("\(path): no \(Self.stateFile) here; not a run directory, or no checkpoint was written yet")
        }
        do { return try JSONDecoder().decode(TrainingState.self, from: data) } catch {
            throw ModelError("\(statePath): not a training state (\(error))")
        }
    }

    func writeState(_ state: TrainingState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try Checkpoint.mapFileErrors { try AtomicFile.write(try encoder.encode(state), to: file(Self.stateFile)) }
    }

    /// The model's weights and configuration, tagged with the step they were written at.
    func writeModel(_ model: TransformerLM, step: Int) throws {
        try Checkpoint.write(model.parameters, layout: model.layout, metadata: ["format": "pt", "step": String(step)],
                             to: file(Checkpoint.weightsFile))
        try model.config.save(path: file(Checkpoint.configFile))
    }

    /// The adapter in PEFT's files, tagged with the step (``PEFTAdapter``).
    func writeAdapter(_ adapter: LoRAAdapter, baseModel: String?, step: Int) throws {
        try PEFTAdapter.write(adapter, to: path, baseModel: baseModel, metadata: ["step": String(step)])
    }

    /// Stops unless the safetensors file `name` was written at `step` (a checkpoint cut short
    /// between its files is caught here).
    func checkStep(of name: String, is step: Int) throws {
        let filePath = file(name)
        let stored = try Checkpoint.mapFileErrors { try SafeTensorsFile(path: filePath) }
        guard stored.metadata["step"] == String(step) else {
            throw ModelError("\(filePath): written at step \(stored.metadata["step"] ?? "?"), but \(Self.stateFile) says step \(step): the checkpoint's files do not belong together")
        }
    }

    /// The saved moments of the parameters in `segments` (see ``Checkpoint/readMoments(_:layout:segments:first:second:)``).
    func readMoments(layout: ParameterLayout, segments: [Range<Int>], first: TensorBuffer, second: TensorBuffer) throws {
        let moments = try Checkpoint.mapFileErrors { try SafeTensorsFile(path: file(Self.optimizerFile)) }
        try Checkpoint.readMoments(moments, layout: layout, segments: segments, first: first, second: second)
        try Checkpoint.mapFileErrors { try moments.requireIntact() }
    }
}
