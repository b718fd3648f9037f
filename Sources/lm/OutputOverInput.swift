import Foundation
import Model
import Tokenizer
#if canImport(Glibc)
import Glibc
#endif

/// A path given to a command, with the option that named it (`--output`, `--model`, …).
struct NamedPath {
    let option: String
    let path: String

    /// nil when the option was not given, so that optional options drop out of a list.
    init?(_ option: String, _ path: String?) {
        guard let path else { return nil }
        (self.option, self.path) = (option, path)
    }
}

/// The rule every `lm` command that reads files and writes others follows before it writes
/// anything: no output may be, or overwrite, one of its inputs. Files are compared by what they
/// are (device and inode, after symlinks and `..` are resolved by `stat`), not by how they are
/// spelled, so a symlink, a hard link or `dir/../file` is caught like the same path.
enum OutputOverInput {
    /// The names `lm` writes into a directory it owns (a model, tokenizer or run directory, the
    /// demo's): a directory output overwrites an input found under one of these names in it.
    static let namesWrittenIntoDirectories: Set<String> = [
        Checkpoint.configFile, Checkpoint.weightsFile, Checkpoint.quantizedWeightsFile,
        TokenizerDirectory.vocabFile, TokenizerDirectory.mergesFile, TokenizerDirectory.huggingFaceFile,
        TokenizerDirectory.sentencePieceFile, TokenizerDirectory.scoredPiecesFile,
        "generation_config.json", "tokenizer_config.json", "chat_template.jinja",
        "metrics.jsonl", "loss.svg", "corpus.txt", "tokens.npy",
    ]

    /// Stops, naming both options and the file, when an output is an input. `files` are outputs
    /// written as one file; `directories` are outputs the command writes files into (refused
    /// when the directory is an input directory, or when a file it would write there is an
    /// input); `standardOutput` adds the command's standard output when it is a file (`>>`).
    /// An input directory stands for itself and the files directly in it (a model or tokenizer
    /// directory is read file by file).
    static func refuse(files: [NamedPath?] = [], directories: [NamedPath?] = [], standardOutput: Bool = false,
                       inputs: [NamedPath?]) throws {
        let read = inputs.compactMap { $0 }.flatMap(readFiles)
        func check(_ output: NamedPath, writing path: String) throws {
            guard let identity = FileIdentity(path: path), let input = read.first(where: { $0.identity == identity }) else { return }
            let same = input.file == input.given.path ? "" : " (\(input.file))"
            let what = path == output.path ? "is" : "would overwrite, as \(path),"
            throw ModelError("\(output.option) \(output.path) \(what) the input \(input.given.option) \(input.given.path)\(same): "
                                  + "writing it would destroy what is read; choose another \(output.option)")
        }
        for output in files.compactMap({ $0 }) { try check(output, writing: output.path) }
        for output in directories.compactMap({ $0 }) {
            try check(output, writing: output.path)
            for name in namesWrittenIntoDirectories.sorted() {
                try check(output, writing: (output.path as NSString).appendingPathComponent(name))
            }
        }
        if standardOutput, let identity = FileIdentity(descriptor: STDOUT_FILENO), identity.isRegularFile,
           let input = read.first(where: { $0.identity == identity }) {
            throw ModelError("standard output is the input \(input.given.option) \(input.given.path): writing it would destroy what is read; "
                                  + "send the output elsewhere")
        }
    }

    /// `input` itself and, for a directory, the files directly in it, each with its identity.
    private static func readFiles(_ input: NamedPath) -> [(given: NamedPath, file: String, identity: FileIdentity)] {
        guard let identity = FileIdentity(path: input.path) else { return [] }
        var files = [(given: input, file: input.path, identity: identity)]
        if !identity.isRegularFile, let names = try? FileManager.default.contentsOfDirectory(atPath: input.path) {
            for name in names.sorted() {
                let file = (input.path as NSString).appendingPathComponent(name)
                if let child = FileIdentity(path: file), child.isRegularFile { files.append((input, file, child)) }
            }
        }
        return files
    }
}

/// What a file is, whatever it is called: its device and inode (`stat` follows symlinks, and
/// the kernel resolves `..`), so two spellings, a symlink or a hard link give equal identities.
struct FileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64
    let isRegularFile: Bool

    /// nil when nothing exists at `path` (an output not written yet overwrites nothing).
    init?(path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        self.init(status)
    }

    /// The file behind an open descriptor (standard output), nil when it cannot be examined.
    init?(descriptor: Int32) {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return nil }
        self.init(status)
    }

    private init(_ status: stat) {
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
        isRegularFile = (status.st_mode & S_IFMT) == S_IFREG
    }
}
