import Foundation
import TensorIO

/// A tokenizer on disk: a directory with `vocab.json` + `merges.txt` (GPT-2 format) and
/// `tokenizer.json` (Hugging Face format). Loading prefers `tokenizer.json`, which records
/// which tokens are special.
public enum TokenizerDirectory {
    public static let vocabFile = "vocab.json"
    public static let mergesFile = "merges.txt"
    public static let huggingFaceFile = "tokenizer.json"
    /// llama2.c's SentencePiece-style vocabulary (``SentencePieceTokenizer``).
    public static let sentencePieceFile = "tokenizer.bin"
    /// A scored SentencePiece vocabulary (Gemma's) as a GGUF file of `tokenizer.ggml.*` keys and no tensors.
    public static let scoredPiecesFile = "tokenizer.gguf"

    /// Whichever tokenizer `directory` holds: `tokenizer.bin` (llama2.c), else the byte-level
    /// BPE files as ``load(_:)`` reads them; nil when it holds none. A `.gguf` file gives the
    /// tokenizer in its metadata (``GGUFTokenizer``).
    public static func loadAny(_ directory: String) throws -> (any TextTokenizer)? {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if directory.hasSuffix(".gguf"), manager.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            let file: GGUFFile
            do { file = try GGUFFile(path: directory) } catch { throw TokenizerError("\(error)") }
            return try GGUFTokenizer.load(file)
        }
        let binary = (directory as NSString).appendingPathComponent(sentencePieceFile)
        if manager.fileExists(atPath: binary) { return try SentencePieceTokenizer(path: binary) }
        let scored = (directory as NSString).appendingPathComponent(scoredPiecesFile)
        if manager.fileExists(atPath: scored) {
            let file: GGUFFile
            do { file = try GGUFFile(path: scored) } catch { throw TokenizerError("\(error)") }
            return try GGUFTokenizer.load(file)
        }
        let names = [huggingFaceFile, vocabFile]
        guard names.contains(where: { manager.fileExists(atPath: (directory as NSString).appendingPathComponent($0)) }) else { return nil }
        return try load(directory)
    }

    public static func load(_ directory: String) throws -> Tokenizer {
        let manager = FileManager.default
        let json = (directory as NSString).appendingPathComponent(huggingFaceFile)
        if manager.fileExists(atPath: json) { return try HuggingFaceFile.load(path: json) }
        let vocab = (directory as NSString).appendingPathComponent(vocabFile)
        let merges = (directory as NSString).appendingPathComponent(mergesFile)
        guard manager.fileExists(atPath: vocab), manager.fileExists(atPath: merges) else {
            throw TokenizerError("\(directory): no tokenizer here (needs \(huggingFaceFile), or \(vocabFile) and \(mergesFile))")
        }
        return try GPT2Files.load(vocab: vocab, merges: merges)
    }

    /// Writes all three files, each atomically (temporary name, then rename).
    public static func save(_ tokenizer: Tokenizer, to directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TokenizerError("\(directory): cannot create directory: \(SystemErrorText.describe(error))")
        }
        for (name, data) in [(vocabFile, GPT2Files.vocabJSON(tokenizer)), (mergesFile, GPT2Files.mergesText(tokenizer)),
                             (huggingFaceFile, try HuggingFaceFile.json(tokenizer))] {
            let path = (directory as NSString).appendingPathComponent(name)
            do {
                try AtomicFile.write(data, to: path)
            } catch {
                throw TokenizerError("\(error)")
            }
        }
    }
}
