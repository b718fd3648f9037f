import ArgumentParser
import Drawing
import Foundation
import Kernels
import Model
import TensorIO
import Tokenizer

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer", abstract: "Train, apply and invert byte-level BPE tokenizers.",
        subcommands: [Train.self, Encode.self, Decode.self, Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show how a text splits into tokens: boundaries and ids (colours on a terminal, brackets otherwise).")

        @Option(help: "Tokenizer directory (tokenizer.json, vocab.json + merges.txt, or llama2.c's tokenizer.bin), a model directory holding one, or a .gguf file.")
        var tokenizer: String
        @Argument(help: "The text to tokenize.") var text: String
        @Flag(help: "Brackets even on a terminal.") var plain = false

        func run() throws {
            guard let loaded = try TokenizerDirectory.loadAny(tokenizer) else {
                throw ValidationError("\(tokenizer): no tokenizer files (tokenizer.json, vocab.json + merges.txt, or tokenizer.bin)")
            }
            let ids = loaded.encodePrompt(text)
            let colours = !plain && isatty(STDOUT_FILENO) == 1
            // Six background colours in turn, so that neighbouring tokens always differ.
            let backgrounds = [44, 42, 45, 46, 43, 41]
            var line = "", previous: Int32?
            for (index, id) in ids.enumerated() {
                let bytes = try loaded.pieceBytes(id, after: previous)
                previous = id
                let piece = Self.visible(bytes)
                line += colours ? "\u{1B}[30;\(backgrounds[index % backgrounds.count])m\(piece)\u{1B}[0m" : "[\(piece)](\(id))"
            }
            print(line)
            if colours { print(ids.map(String.init).joined(separator: " ")) }
            print("\(ids.count) tokens, \(text.utf8.count) bytes")
        }

        /// A piece made visible: control characters as symbols, bytes that are not whole UTF-8
        /// characters (a byte-level piece of a longer character) in hex.
        static func visible(_ bytes: [UInt8]) -> String {
            let valid = bytes.withUnsafeBufferPointer { UTF8Validation.firstInvalidOffset($0) == nil }
            return valid ? AttentionMap.label(bytes) : "⟨" + bytes.map { String(format: "%02x", $0) }.joined(separator: " ") + "⟩"
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a tokenizer and write vocab.json, merges.txt and tokenizer.json to a directory.")

        @Option(help: "UTF-8 training text.") var input: String
        @Option(help: "Vocabulary size: special tokens + 256 bytes + merges.") var vocabSize: Int
        @Option(name: .customLong("special-token"), help: "A special token (repeatable), e.g. <|endoftext|>.") var specialTokens: [String] = []
        @Option(help: "Directory to write the tokenizer files into.") var output: String
        @OptionGroup var threading: ThreadOptions
        @Flag(help: "No progress display.") var quiet = false

        func validate() throws {
            if vocabSize < 256 + specialTokens.count {
                throw ValidationError("--vocab-size \(vocabSize) is below 256 bytes + \(specialTokens.count) special tokens")
            }
        }

        func run() throws {
            try OutputOverInput.refuse(directories: [NamedPath("--output", output)], inputs: [NamedPath("--input", input)])
            let progress = ProgressLine(quiet: quiet)
            let start = Date()
            threading.apply()
            let options = BPETrainingOptions(vocabSize: vocabSize, specialTokens: specialTokens, threads: Threading.count)
            let tokenizer = try BPETrainer.train(file: input, options: options) { step in
                switch step {
                case .counting(let done, let total):
                    progress.update("pre-tokenizing \(ProgressLine.megabytes(done)) / \(ProgressLine.megabytes(total))")
                case .merging(let done, let total):
                    progress.update("merges \(done) / \(total)", force: done == total)
                }
            }
            progress.finish()
            try TokenizerDirectory.save(tokenizer, to: output)
            if !quiet {
                printError(String(format: "trained %d tokens (%d merges) in %.2f s → %@", tokenizer.vocabularySize,
                                  tokenizer.merges.count, Date().timeIntervalSince(start), output))
            }
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode a UTF-8 file (streamed, any size) into int32 ids in an NPY file.",
            discussion: """
            With llama2.c's tokenizer.bin the file is encoded whole, as run.c does (BOS first), and \
            may be at most 256 MiB.
            """)

        /// The largest text a SentencePiece-style tokenizer encodes (whole, as run.c does).
        static let maximumSentencePieceBytes = 256 << 20

        @Option(help: "Tokenizer directory (tokenizer.json, vocab.json + merges.txt, or llama2.c's tokenizer.bin), a model directory holding one, or a .gguf file.")
        var tokenizer: String
        @Option(help: "UTF-8 text to encode.") var input: String
        @Option(help: "Output .npy file (int32, shape [N]).") var output: String
        @OptionGroup var threading: ThreadOptions
        @Flag(help: "No progress display.") var quiet = false

        func run() throws {
            try OutputOverInput.refuse(files: [NamedPath("--output", output)],
                                       inputs: [NamedPath("--input", input), NamedPath("--tokenizer", tokenizer)])
            threading.apply()
            let any = try TokenizerDirectory.loadAny(tokenizer)
            if let pieces = any as? SentencePieceTokenizer {
                return try encodeWhole(describing: "tokenizer.bin, BOS first") { pieces.encode($0, bos: true) }
            }
            if let pieces = any as? ScoredPieceTokenizer {
                return try encodeWhole(describing: "scored SentencePiece pieces, the prompt prefix first") { pieces.encodePrompt($0) }
            }
            guard let loaded = any as? Tokenizer else {
                throw ValidationError("\(tokenizer): no tokenizer files (tokenizer.json, vocab.json + merges.txt, tokenizer.bin, or a .gguf file)")
            }
            let progress = ProgressLine(quiet: quiet)
            let total = (try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
            let writer = try NPYStreamWriter(int32At: output)
            let start = Date()
            do {
                let streaming = StreamingEncoder(tokenizer: loaded, threads: Threading.count)
                try streaming.encode(file: input, emit: { try writer.append($0) }) { done in
                    progress.update("encoding \(ProgressLine.megabytes(done)) / \(ProgressLine.megabytes(total))")
                }
                try writer.finish()
            } catch {
                writer.cancel()
                progress.finish()
                throw error
            }
            progress.finish()
            if !quiet {
                let seconds = Date().timeIntervalSince(start)
                printError(String(format: "%d ids from %@ in %.2f s (%.1f MB/s)", writer.count, ProgressLine.megabytes(total), seconds,
                                  Double(total) / 1e6 / max(seconds, 1e-9)))
            }
        }

        /// A SentencePiece tokenizer (llama2.c's, or a GGUF file's scored pieces): the whole text
        /// at once, bounded in size before it is read.
        private func encodeWhole(describing what: String, _ encode: (String) -> [Int32]) throws {
            if let problem = InputFile.problem(input) { throw ValidationError("\(input): \(problem)") }
            let size = (try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
            guard size <= Self.maximumSentencePieceBytes, let handle = FileHandle(forReadingAtPath: input) else {
                throw ValidationError("\(input): \(size) bytes; a SentencePiece tokenizer encodes at most \(Self.maximumSentencePieceBytes >> 20) MiB at once")
            }
            defer { try? handle.close() }
            // Read one byte past the limit: a file that grows, or a device, is caught too.
            let data = try handle.read(upToCount: Self.maximumSentencePieceBytes + 1) ?? Data()
            guard data.count <= Self.maximumSentencePieceBytes else {
                throw ValidationError("\(input): more than \(Self.maximumSentencePieceBytes >> 20) MiB; a SentencePiece tokenizer encodes at most that at once")
            }
            guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(input): not UTF-8 text") }
            let ids = encode(text)
            let writer = try NPYStreamWriter(int32At: output)
            try writer.append(ids)
            try writer.finish()
            if !quiet { printError("\(ids.count) ids from \(data.count) bytes (\(what))") }
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the text of token ids stored in an NPY file.")

        @Option(help: "Tokenizer directory (tokenizer.json, vocab.json + merges.txt, or llama2.c's tokenizer.bin), a model directory holding one, or a .gguf file.")
        var tokenizer: String
        @Option(help: "Ids as NPY (int32, int64, uint16 or int16), any shape (read in order).") var input: String

        func run() throws {
            try OutputOverInput.refuse(standardOutput: true, inputs: [NamedPath("--input", input), NamedPath("--tokenizer", tokenizer)])
            guard let loaded = try TokenizerDirectory.loadAny(tokenizer) else {
                throw ValidationError("\(tokenizer): no tokenizer files (tokenizer.json, vocab.json + merges.txt, or tokenizer.bin)")
            }
            let file = try NPYFile(path: input)
            try file.requireTokenIDs()
            let ids = try file.integers()
            try file.requireIntact()
            // Invalid UTF-8 (ids that split a character) prints as U+FFFD.
            let text: String
            do {
                switch loaded {
                case let pieces as SentencePieceTokenizer: text = try pieces.decode(ids)
                case let pieces as ScoredPieceTokenizer: text = try pieces.decode(ids)
                case let bpe as Tokenizer: text = try bpe.decode(ids)
                default: throw TokenizerError("\(tokenizer): this tokenizer cannot decode ids")
                }
            } catch let error as TokenizerError {
                throw TokenizerError("\(input): \(error.message)")
            }
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
