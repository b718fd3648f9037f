import Drawing
import Foundation
import Kernels
import TensorIO

/// The files of a training run, and nothing else of training:
///
/// - `checkpoints/step-N-ID/`: the newest complete checkpoint (a ``CheckpointFolder``), and while
///   the next one is written, the one before it;
/// - `current`: a link to the newest complete checkpoint's folder;
/// - `model.safetensors`, `config.json`, `optimizer.safetensors`, `training_state.json`: links
///   through `current`, so that the run directory is itself a model directory
///   (`lm generate --model RUN`);
/// - the tokenizer files, `metrics.jsonl` and `loss.svg`;
/// - `.lock`, held by the process that writes the run (``RunLock``).
///
/// A checkpoint is written into a fresh folder, every file flushed to the disk, and published by
/// one rename of the `current` link: whenever the process stops (a crash, SIGKILL, a full disk),
/// `current` names a complete checkpoint. Runs written before checkpoints had folders (the
/// four files at the top) resume as they are, and their next checkpoint moves them to this layout.
struct RunDirectory {
    static let metricsFile = "metrics.jsonl", plotFile = "loss.svg"
    static let checkpointsFolder = "checkpoints", currentLink = "current"
    private static let partialPrefix = ".partial-"

    let path: String

    /// The path of `name` inside the run directory.
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Whether `directory` already holds a run (a checkpoint with its state).
    static func hasRun(in directory: String) -> Bool { RunDirectory(path: directory).checkpoint.hasState }

    /// The newest complete checkpoint: where `current` points, else (a run of the old layout) the
    /// run directory itself.
    var checkpoint: CheckpointFolder {
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: file(Self.currentLink)) {
            let folder = CheckpointFolder(path: target.hasPrefix("/") ? target : file(target))
            if folder.hasState { return folder }
        }
        return CheckpointFolder(path: path)
    }

    /// Creates the directory (and its parents) when missing.
    func create() throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ModelError("\(path): cannot create the run directory: \(SystemErrorText.describe(error))")
        }
    }

    /// Writes a checkpoint: `write` fills a fresh folder, which is then flushed and published as
    /// the run's current checkpoint; the older checkpoint folders are removed after that. Files
    /// take the permissions of the previous checkpoint's files. On an error nothing published
    /// changes and the partial folder is removed.
    func publishCheckpoint(step: Int, files: [String] = CheckpointFolder.files, _ write: (CheckpointFolder) throws -> Void) throws {
        let checkpoints = file(Self.checkpointsFolder)
        try makeDirectory(checkpoints)
        let name = String(format: "step-%09d-%@", step, String(UInt32.random(in: 0...UInt32.max), radix: 16))
        let partial = (checkpoints as NSString).appendingPathComponent(Self.partialPrefix + name)
        try makeDirectory(partial)
        let previous = checkpoint
        do {
            try write(CheckpointFolder(path: partial))
            for file in files {
                var status = stat()
                if stat(previous.file(file), &status) == 0 { chmod((partial as NSString).appendingPathComponent(file), status.st_mode & 0o7777) }
            }
            TemporaryFile.syncDirectory(partial)
            let published = (checkpoints as NSString).appendingPathComponent(name)
            guard rename(partial, published) == 0 else { throw ModelError("\(published): cannot publish the checkpoint: \(String(cString: strerror(errno)))") }
            TemporaryFile.syncDirectory(checkpoints)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        // The switch: one rename of the `current` link.
        try replaceWithLink(file(Self.currentLink), pointingTo: Self.checkpointsFolder + "/" + name)
        // The top-level names go through `current` (once; an old run's own files are replaced here).
        for file in files {
            let link = self.file(file), target = Self.currentLink + "/" + file
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) != target { try replaceWithLink(link, pointingTo: target) }
        }
        TemporaryFile.syncDirectory(path)
        removeCheckpoints(except: name)
    }

    /// Removes every entry of `checkpoints/` but the folder `kept` (older checkpoints, partial ones).
    private func removeCheckpoints(except kept: String?) {
        let checkpoints = file(Self.checkpointsFolder)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? [] where name != kept {
            try? FileManager.default.removeItem(atPath: (checkpoints as NSString).appendingPathComponent(name))
        }
    }

    /// Removes what an interrupted writer left: partial checkpoint folders, checkpoints that are
    /// not current, temporary files and links. Only the holder of the run's lock may call it.
    func removeStaleFiles() {
        let manager = FileManager.default
        removeCheckpoints(except: (try? manager.destinationOfSymbolicLink(atPath: file(Self.currentLink))).map { ($0 as NSString).lastPathComponent })
        for name in (try? manager.contentsOfDirectory(atPath: path)) ?? [] where Self.isTemporary(name) {
            try? manager.removeItem(atPath: file(name))
        }
    }

    /// `.NAME.tmp-…` (a ``TemporaryFile``) or `.link-…` (a link about to replace another).
    private static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && (name.contains(".tmp-") || name.hasPrefix(".link-"))
    }

    /// The evaluation and logging records written so far (none before the first).
    func readRecords() throws -> [TrainingRecord] {
        let metricsPath = file(Self.metricsFile)
        return try FileManager.default.contents(atPath: metricsPath).map { try TrainingRecord.parse(jsonLines: $0, path: metricsPath) } ?? []
    }

    /// `metrics.jsonl` and `loss.svg`, rewritten whole (atomically) so either can be opened mid-run.
    func writeMetrics(_ records: [TrainingRecord]) throws {
        try Checkpoint.mapFileErrors {
            try AtomicFile.write(try TrainingRecord.jsonLines(records), to: file(Self.metricsFile))
            let train = records.map { (step: $0.step, loss: $0.trainLoss) }
            let validation = records.compactMap { record in record.valLoss.map { (step: record.step, loss: $0) } }
            let title = "\(URL(fileURLWithPath: path).lastPathComponent): loss per token"
            try AtomicFile.write(Data(LossPlot.svg(train: train, validation: validation, title: title).utf8), to: file(Self.plotFile))
        }
    }

    private func makeDirectory(_ directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ModelError("\(directory): cannot create: \(SystemErrorText.describe(error))")
        }
    }

    /// Makes `link` a symbolic link to `target`, atomically: a new link under a temporary name
    /// renamed over whatever `link` was.
    private func replaceWithLink(_ link: String, pointingTo target: String) throws {
        let temporary = file(".link-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))")
        guard symlink(target, temporary) == 0 else {
            throw ModelError("\(temporary): cannot create a link: \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, link) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ModelError("\(link): cannot replace: \(reason)")
        }
    }
}
