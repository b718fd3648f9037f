import Foundation
import TensorIO

/// What a tokenizer training run is asked to do.
public struct BPETrainingOptions: Sendable {
    /// Final vocabulary size: special tokens + 256 bytes + merges.
    public var vocabSize: Int
    /// Split out before pre-tokenization, never merged across; given the first ids.
    public var specialTokens: [String]
    /// Threads for counting pre-tokens.
    public var threads: Int

    public init(vocabSize: Int, specialTokens: [String] = [], threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.vocabSize = vocabSize
        self.specialTokens = specialTokens
        self.threads = threads
    }
}

/// Progress of a training run, for a progress display.
public enum BPETrainingProgress: Sendable {
    case counting(bytesDone: Int, bytesTotal: Int)
    case merging(done: Int, total: Int)
}

/// Byte-level BPE training, exact to the CS336 reference: pre-tokens counted with 64-bit counts
/// (in parallel over chunks cut where pre-tokenization cannot cross), then merges chosen one at a
/// time as the most frequent adjacent pair, ties to the lexicographically greater pair of byte
/// strings, with pair counts updated incrementally (only the words containing the merged pair
/// are touched). Ids: special tokens first, the 256 bytes in GPT-2's byte order, then merges.
public enum BPETrainer {
    /// Trains on a file, memory-mapped; it must be UTF-8 (the error names the byte and line).
    public static func train(file path: String, options: BPETrainingOptions,
                             progress: ((BPETrainingProgress) -> Void)? = nil) throws -> Tokenizer {
        let text = try TextFile(path: path)
        return try text.withBytes { try train(bytes: $0, options: options, progress: progress) }
    }

    /// Trains on valid UTF-8 bytes.
    public static func train(bytes text: UnsafeBufferPointer<UInt8>, options: BPETrainingOptions,
                             progress: ((BPETrainingProgress) -> Void)? = nil) throws -> Tokenizer {
        let specials = options.specialTokens
        guard Set(specials).count == specials.count else { throw TokenizerError("special tokens are given more than once") }
        guard !specials.contains("") else { throw TokenizerError("special tokens must not be empty") }
        // Ids are Int32, and a vocabulary needs its merges' pairs held in memory: refuse sizes no
        // corpus could fill before trying to reserve them.
        guard options.vocabSize <= 1 << 24 else {
            throw TokenizerError("vocab size \(options.vocabSize) is larger than the \(1 << 24) this trainer supports")
        }
        guard options.vocabSize >= 256 + specials.count else {
            throw TokenizerError("vocab size \(options.vocabSize) is below 256 bytes + \(specials.count) special tokens = \(256 + specials.count)")
        }
        let specialCount = Int32(specials.count)
        // id of each byte: after the special tokens, in GPT-2's byte order.
        var byteID = [Int32](repeating: 0, count: 256)
        for (position, byte) in ByteLevel.byteOrder.enumerated() { byteID[Int(byte)] = specialCount + Int32(position) }
        var vocabulary: [[UInt8]] = specials.map { Array($0.utf8) }
        vocabulary += ByteLevel.byteOrder.map { [$0] }

        let counts = PieceCounter.count(text, specials: SpecialTokenMatcher(specials.enumerated().map { ($1, Int32($0)) }),
                                        threads: max(1, options.threads), progress: progress)
        var state = MergeState(counts: counts, byteID: byteID)
        let mergeTarget = options.vocabSize - vocabulary.count
        var merges: [(left: Int32, right: Int32)] = []
        merges.reserveCapacity(mergeTarget)
        while merges.count < mergeTarget {
            guard let (left, right) = state.bestPair(vocabulary: vocabulary) else { break }  // nothing left to merge
            let newID = Int32(vocabulary.count)
            vocabulary.append(vocabulary[Int(left)] + vocabulary[Int(right)])
            merges.append((left, right))
            state.merge(left, right, into: newID)
            if merges.count % 256 == 0 || merges.count == mergeTarget { progress?(.merging(done: merges.count, total: mergeTarget)) }
        }
        return try Tokenizer(vocabulary: vocabulary, merges: merges, specialTokens: specials)
    }
}

/// A memory-mapped UTF-8 text file; invalid UTF-8 is reported with its byte offset and line.
struct TextFile {
    let path: String
    private let data: Data

    init(path: String) throws {
        self.path = path
        do { data = try InputFile.read(path, mapped: true) } catch let error as TensorFileError {
            throw TokenizerError(error.description)
        }
        let path = self.path
        try data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            if let offset = UTF8Validation.firstInvalidOffset(bytes) {
                let line = bytes[0..<offset].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
                throw TokenizerError("\(path): not UTF-8: invalid byte 0x\(String(bytes[offset], radix: 16)) at offset \(offset) (line \(line))")
            }
        }
    }

    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try data.withUnsafeBytes { try body($0.bindMemory(to: UInt8.self)) }
    }
}
