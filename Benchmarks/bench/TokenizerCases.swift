import Foundation
import Kernels
import Synchronization
import Tokenizer

/// Tokenizer benchmarks: training an 8,192-token vocabulary and encoding, in MB/s of input text.
///
/// The corpus is the King James Bible (`bible -f Gen1:1-Rev22:21`, from Debian's bible-kjv,
/// 4.4 MB) when the `bible` program is installed, as the peers were measured on; otherwise a
/// fixture or generated text, named in the shape column. Encoding uses GPT-2's vocabulary from
/// `../shared` when present (what tiktoken is measured with), else the 8,192-token one trained here.
enum TokenizerCases {
    static func all(quick: Bool, corpusPath: String?) -> [BenchCase] {
        let corpus = Corpus.load(explicit: corpusPath, quick: quick)
        let size = corpus.bytes.count
        let vocabSize = 8_192
        let train = BenchCase(name: "tokenizer/train_bpe_\(vocabSize)", detail: "\(corpus.name), \(Threading.count) threads", bytes: size) {
            let options = BPETrainingOptions(vocabSize: vocabSize, specialTokens: ["<|endoftext|>"], threads: Threading.count)
            let run = { _ = try! corpus.bytes.withUnsafeBufferPointer { try BPETrainer.train(bytes: $0, options: options) } }
            let tokenizer = try corpus.bytes.withUnsafeBufferPointer { try BPETrainer.train(bytes: $0, options: options) }
            return Prepared(run: run, check: "\(tokenizer.vocabularySize) tokens, \(tokenizer.merges.count) merges")
        }
        let encoders = [1, 2].map { threads in
            BenchCase(name: "tokenizer/encode/\(threads)_thread\(threads > 1 ? "s" : "")", detail: "\(corpus.name), \(encodingVocabularyName)",
                      bytes: size) {
                let tokenizer = try encodingTokenizer(corpus: corpus)
                // A fresh encoder per run: every run starts with an empty piece cache.
                let run = { corpus.bytes.withUnsafeBufferPointer { bytes in
                    var ids: [Int32] = []
                    ParallelEncoder(tokenizer: tokenizer, threads: threads).encode(bytes, into: &ids)
                } }
                var ids: [Int32] = []
                corpus.bytes.withUnsafeBufferPointer { ParallelEncoder(tokenizer: tokenizer, threads: threads).encode($0, into: &ids) }
                let serial = corpus.bytes.withUnsafeBufferPointer { bytes -> [Int32] in
                    var serialIDs: [Int32] = []
                    tokenizer.makeEncoder().encode(bytes, into: &serialIDs)
                    return serialIDs
                }
                guard ids == serial else { throw BenchFailure(description: "parallel encoding differs from serial") }
                guard try tokenizer.decodeBytes(ids) == corpus.bytes else { throw BenchFailure(description: "decode(encode(text)) != text") }
                return Prepared(run: run, check: "\(ids.count) ids, round trip ok")
            }
        }
        let pathological = [("a", "one letter"), (" ", "spaces"), ("🙃", "one emoji")].map { unit, label in
            BenchCase(name: "tokenizer/encode_1MB/\(label.replacingOccurrences(of: " ", with: "_"))", detail: "1 MB of \(label), \(encodingVocabularyName)",
                      bytes: 1 << 20) {
                let tokenizer = try encodingTokenizer(corpus: corpus)
                let text = Array(String(repeating: unit, count: (1 << 20) / unit.utf8.count).utf8)
                let run = { text.withUnsafeBufferPointer { bytes in
                    var ids: [Int32] = []
                    tokenizer.makeEncoder().encode(bytes, into: &ids)
                } }
                var ids: [Int32] = []
                text.withUnsafeBufferPointer { tokenizer.makeEncoder().encode($0, into: &ids) }
                guard try tokenizer.decodeBytes(ids) == text else { throw BenchFailure(description: "round trip failed") }
                return Prepared(run: run, check: "\(ids.count) ids, round trip ok")
            }
        }
        return [train] + encoders + pathological + loading(corpus: corpus)
    }

    /// Start-up: reading a tokenizer from disk, as every `lm` command that encodes does first.
    static func loading(corpus: Corpus) -> [BenchCase] {
        let formats: [(name: String, detail: String, load: (String) throws -> Tokenizer)] = [
            ("gpt2_files", "vocab.json + merges.txt", {
                try GPT2Files.load(vocab: $0 + "/" + TokenizerDirectory.vocabFile, merges: $0 + "/" + TokenizerDirectory.mergesFile)
            }),
            ("tokenizer_json", "tokenizer.json", { try HuggingFaceFile.load(path: $0 + "/" + TokenizerDirectory.huggingFaceFile) }),
        ]
        return formats.map { format in
            BenchCase(name: "tokenizer/load/\(format.name)", detail: "\(format.detail), \(encodingVocabularyName)") {
                let original = try encodingTokenizer(corpus: corpus)
                // One fixed place, rewritten by every bench run, so that none accumulate.
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlm-bench-tokenizer").path
                try TokenizerDirectory.save(original, to: directory)
                let loaded = try format.load(directory)
                guard loaded.vocabulary == original.vocabulary, loaded.merges.map(\.result) == original.merges.map(\.result) else {
                    throw BenchFailure(description: "\(format.detail) does not load back as written")
                }
                return Prepared(run: { _ = try! format.load(directory) }, check: "\(loaded.vocabularySize) tokens, \(loaded.merges.count) merges")
            }
        }
    }

    static let gpt2Directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/tokenizer").path

    static var hasGPT2: Bool { FileManager.default.fileExists(atPath: gpt2Directory + "/gpt2_vocab.json") }
    static var encodingVocabularyName: String { hasGPT2 ? "GPT-2 vocabulary" : "8,192-token vocabulary trained here" }

    private static let cachedTokenizer = Mutex<Tokenizer?>(nil)

    static func encodingTokenizer(corpus: Corpus) throws -> Tokenizer {
        if let cached = cachedTokenizer.withLock({ $0 }) { return cached }
        let tokenizer = hasGPT2
            ? try GPT2Files.load(vocab: gpt2Directory + "/gpt2_vocab.json", merges: gpt2Directory + "/gpt2_merges.txt")
            : try corpus.bytes.withUnsafeBufferPointer {
                try BPETrainer.train(bytes: $0, options: BPETrainingOptions(vocabSize: 8_192, specialTokens: ["<|endoftext|>"]))
            }
        cachedTokenizer.withLock { $0 = tokenizer }
        return tokenizer
    }
}

/// The text the tokenizer benchmarks run on.
struct Corpus {
    let name: String
    let bytes: [UInt8]

    static func load(explicit: String?, quick: Bool) -> Corpus {
        var corpus = find(explicit: explicit)
        // A quick run uses the first megabyte, cut after a newline.
        if quick && corpus.bytes.count > 1 << 20 {
            let end = corpus.bytes[(1 << 20)...].firstIndex(of: 0x0A).map { $0 + 1 } ?? corpus.bytes.count
            corpus = Corpus(name: corpus.name + ", first 1 MB", bytes: Array(corpus.bytes[..<end]))
        }
        return corpus
    }

    private static func find(explicit: String?) -> Corpus {
        if let explicit, let data = FileManager.default.contents(atPath: explicit) {
            return Corpus(name: (explicit as NSString).lastPathComponent, bytes: [UInt8](data))
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/bible"), let text = run("/usr/bin/bible", ["-f", "Gen1:1-Rev22:21"]),
           text.count > 1_000_000 {
            return Corpus(name: "KJV Bible \(String(format: "%.1f", Double(text.count) / 1e6)) MB", bytes: text)
        }
        let sample = TokenizerCases.gpt2Directory + "/tinystories_sample.txt"
        if let data = FileManager.default.contents(atPath: sample) {
            let repeated = (0..<1_200).flatMap { _ in [UInt8](data) + Array("<|endoftext|>".utf8) }
            return Corpus(name: "tinystories_sample ×1200", bytes: repeated)
        }
        var generator = SeededGenerator(seed: 5)
        let words = ["the", "cat", "sat", "on", "a", "mat", "and", "said", "hello", "world", "naïve", "café", "日本", "1984"]
        var text = ""
        while text.utf8.count < 4_000_000 {
            text += words[Int(generator.next() % UInt64(words.count))] + (generator.next() % 12 == 0 ? ".\n" : " ")
        }
        return Corpus(name: "generated text 4 MB", bytes: Array(text.utf8))
    }

    private static func run(_ executable: String, _ arguments: [String]) -> [UInt8]? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return process.terminationStatus == 0 ? [UInt8](data) : nil
    }
}
