import Foundation
import Kernels
import TensorIO

/// A token-id file as training data: an NPY array of ids of one of `NPYFile.tokenIDTypes` (TensorIO) (what
/// `lm tokenizer encode` writes), memory-mapped and never read whole. Every id is checked
/// against the vocabulary once, when the file is opened. A file that shrinks under the map later
/// (rewritten while training reads it) reads as zeros and is caught by ``requireIntact()``,
/// which every batch passes (see `MappedFile` in TensorIO for why this design).
///
/// A loss mask may sit beside the ids (``maskPath(for:)``: `data.npy` → `data.mask.npy`, as
/// many values, 1 where the token is learned, 0 where it is only read: a prompt's tokens in chat
/// fine-tuning, ``ChatData``); batches then mark the targets it masks out
/// ``/Kernels/CrossEntropy/ignored``.
public struct TokenDataset {
    public let path: String
    private let file: NPYFile
    /// The loss mask, when the ids have one.
    private let mask: NPYFile?
    /// The ids this dataset covers: the whole file, or part of it after ``split(validationFraction:)``.
    public let range: Range<Int>

    /// Throws naming the file: another dtype, an id outside `0..<vocabSize` (with its index).
    public init(path: String, vocabSize: Int) throws {
        self.path = path
        do {
            file = try NPYFile(path: path)
            try file.requireTokenIDs()
        } catch let error as TensorFileError {
            throw ModelError(error.description)
        }
        for index in 0..<file.elementCount {
            let id = file.integer(at: index)
            if id < 0 || id >= vocabSize { throw ModelError("\(path): id \(id) at index \(index) is outside the vocabulary 0..<\(vocabSize)") }
        }
        range = 0..<file.elementCount
        let maskPath = Self.maskPath(for: path)
        if FileManager.default.fileExists(atPath: maskPath) {
            let mask: NPYFile
            do {
                mask = try NPYFile(path: maskPath)
                try mask.requireTokenIDs()
            } catch let error as TensorFileError {
                throw ModelError(error.description)
            }
            guard mask.elementCount == file.elementCount else {
                throw ModelError("\(maskPath): \(mask.elementCount) mask values for the \(file.elementCount) ids of \(path)")
            }
            for index in 0..<mask.elementCount where mask.integer(at: index) != 0 && mask.integer(at: index) != 1 {
                throw ModelError("\(maskPath): value \(mask.integer(at: index)) at index \(index); a loss mask holds 0 or 1")
            }
            self.mask = mask
        } else {
            mask = nil
        }
        try requireIntact()
    }

    private init(path: String, file: NPYFile, mask: NPYFile?, range: Range<Int>) {
        self.path = path
        self.file = file
        self.mask = mask
        self.range = range
    }

    /// Where the loss mask of the ids at `path` is looked for: `name.npy` → `name.mask.npy`.
    public static func maskPath(for path: String) -> String {
        (path.hasSuffix(".npy") ? String(path.dropLast(4)) : path) + ".mask.npy"
    }

    /// Whether the ids have a loss mask.
    public var isMasked: Bool { mask != nil }

    /// The first `1 − fraction` of the ids for training and the rest for validation, over the
    /// same mapped file (one corpus, no code, no copy).
    public func split(validationFraction fraction: Double) throws -> (training: TokenDataset, validation: TokenDataset) {
        guard fraction > 0, fraction < 1 else { throw ModelError("validation fraction must be in (0, 1), got \(fraction)") }
        let cut = range.lowerBound + Int((Double(count) * (1 - fraction)).rounded())
        return (TokenDataset(path: path, file: file, mask: mask, range: range.lowerBound..<cut),
                TokenDataset(path: path, file: file, mask: mask, range: cut..<range.upperBound))
    }

    /// Stops, naming the file, when it shrank since it was opened: the ids copied since include
    /// zeros that are not the file's. Call after copying, before the ids are used.
    public func requireIntact() throws {
        do {
            try file.requireIntact()
            try mask?.requireIntact()
        } catch let error as TensorFileError {
            throw ModelError("\(error.description); regenerate the data under another name and resume")
        }
    }

    /// Number of tokens.
    public var count: Int { range.count }

    /// Copies ids `start..<start + length` (relative to ``range``) to `target`.
    public func copy(from start: Int, count length: Int, to target: UnsafeMutablePointer<Int32>) {
        precondition(start >= 0 && start + length <= count, "TokenDataset.copy: \(start)..<\(start + length) outside 0..<\(count)")
        for i in 0..<length { target[i] = Int32(truncatingIfNeeded: file.integer(at: range.lowerBound + start + i)) }
    }

    /// Sets `targets[i]` to ``/Kernels/CrossEntropy/ignored`` where the mask leaves ids
    /// `start + i` (relative to ``range``) out of the loss; nothing without a mask.
    public func maskTargets(from start: Int, count length: Int, _ targets: UnsafeMutablePointer<Int32>) {
        guard let mask else { return }
        for i in 0..<length where mask.integer(at: range.lowerBound + start + i) == 0 { targets[i] = CrossEntropy.ignored }
    }

    /// Windows of `length + 1` tokens that fit: the number of valid start positions.
    public func windowCount(length: Int) -> Int { max(0, count - length) }
}

/// Batches of `batch` windows of `length + 1` tokens from a ``TokenDataset``: inputs are each
/// window's first `length` ids, targets its last `length` (the next token at each position).
/// Random windows come from a seeded generator whose state is part of a checkpoint, so a resumed
/// run draws the batches the uninterrupted run would have drawn.
public struct BatchSampler {
    public let batch: Int
    public let length: Int
    /// The generator's state: save it to resume, pass it to `init` to continue.
    public var state: UInt64 { generator.state }
    private var generator: SeededGenerator

    public init(batch: Int, length: Int, state: UInt64) {
        self.batch = batch
        self.length = length
        generator = SeededGenerator(seed: state)
    }

    /// Fills inputs and targets ([batch, length] each) with random windows of `data`.
    public mutating func next(from data: TokenDataset, inputs: UnsafeMutableBufferPointer<Int32>, targets: UnsafeMutableBufferPointer<Int32>) {
        next(from: data, rows: 0..<batch, inputs: inputs, targets: targets)
    }

    /// Draws the next batch of `batch` windows but fills only `rows` of it into inputs and
    /// targets ([rows.count, length] each): a rank's share of the batch in data-parallel
    /// training. Every rank draws every window, so all ranks' generators stay in step and the
    /// ranks together see exactly the batch one process would.
    public mutating func next(from data: TokenDataset, rows: Range<Int>, inputs: UnsafeMutableBufferPointer<Int32>,
                              targets: UnsafeMutableBufferPointer<Int32>) {
        let starts = data.windowCount(length: length)
        precondition(starts > 0, "BatchSampler: \(data.count) tokens are too few for windows of \(length + 1)")
        precondition(rows.lowerBound >= 0 && rows.upperBound <= batch && inputs.count >= rows.count * length && targets.count >= rows.count * length,
                     "BatchSampler: rows \(rows) of a batch of \(batch) do not fit buffers of \(inputs.count) and \(targets.count) ids")
        for row in 0..<batch {
            let start = Int(generator.next() % UInt64(starts))
            if rows.contains(row) {
                Self.fill(data, start: start, length: length, row: row - rows.lowerBound, inputs: inputs, targets: targets)
            }
        }
    }

    /// Row `row` of inputs and targets from the window at `start`.
    static func fill(_ data: TokenDataset, start: Int, length: Int, row: Int,
                     inputs: UnsafeMutableBufferPointer<Int32>, targets: UnsafeMutableBufferPointer<Int32>) {
        data.copy(from: start, count: length, to: inputs.baseAddress! + row * length)
        data.copy(from: start + 1, count: length, to: targets.baseAddress! + row * length)
        data.maskTargets(from: start + 1, count: length, targets.baseAddress! + row * length)
    }
}
