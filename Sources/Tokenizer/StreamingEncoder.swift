import Foundation
import TensorIO

/// Encodes a file of any size in bounded memory, block by block, with exactly the ids that
/// encoding it whole would give.
///
/// Each block is encoded up to its last safe cut (``SafeCuts``: a place where the pieces on
/// both sides are those of the whole text, whatever follows); the text after it, including any
/// suffix that may be the start of a special token and any UTF-8 sequence cut by the block end,
/// is carried into the next block. Memory is bounded by the block size plus the longest stretch
/// without a safe cut, which may be at most ``maximumUncutBytes``: GPT-2's pattern makes a run of
/// one character class a single pre-token (a file of one letter, or of NUL bytes like
/// `/dev/zero`), and a longer one is refused with its offset rather than held without end.
public struct StreamingEncoder {
    /// The longest stretch of text without a safe cut that is encoded: 16 MiB (its merges then
    /// take a few hundred MiB at most).
    public static let maximumUncutBytes = 16 << 20

    public let tokenizer: Tokenizer
    /// Bytes read per block.
    public let blockSize: Int
    /// Threads encoding each block (see ``ParallelEncoder``).
    public let threads: Int

    public init(tokenizer: Tokenizer, blockSize: Int = 1 << 22, threads: Int = 1) {
        precondition(blockSize >= 1024, "StreamingEncoder: block size \(blockSize) is too small")
        self.tokenizer = tokenizer
        self.blockSize = blockSize
        self.threads = max(1, threads)
    }

    /// Reads `path` and calls `emit` with the ids of each block, in order, and `progress` with
    /// the bytes read so far. Throws on unreadable or non-UTF-8 input, naming the byte offset.
    public func encode(file path: String, emit: ([Int32]) throws -> Void, progress: ((Int) -> Void)? = nil) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            throw TokenizerError("\(path): \(exists ? (isDirectory.boolValue ? "is a directory" : "cannot open") : "no such file")")
        }
        defer { try? handle.close() }
        try encode(reading: {
            do { return try handle.read(upToCount: blockSize) ?? Data() } catch {
                throw TokenizerError("\(path): read failed: \(SystemErrorText.describe(error))")
            }
        }, source: path, emit: emit, progress: progress)
    }

    /// The same over any source of blocks (`read` returns empty data at the end).
    public func encode(reading read: () throws -> Data, source: String, emit: ([Int32]) throws -> Void,
                       progress: ((Int) -> Void)? = nil) throws {
        let encoder = ParallelEncoder(tokenizer: tokenizer, threads: threads)
        var pending: [UInt8] = []
        var consumed = 0  // bytes of the input before `pending`
        var bytesRead = 0
        var searched = 0  // positions of `pending` below this hold no safe cut (searched before)
        while true {
            let block = try read()
            let atEnd = block.isEmpty
            pending.append(contentsOf: block)
            bytesRead += block.count
            var ids: [Int32] = []
            let (keep, searchedEnd): (Int, Int) = try pending.withUnsafeBufferPointer { buffer in
                if let bad = UTF8Validation.firstInvalidOffset(buffer, allowTruncatedEnd: !atEnd) {
                    throw TokenizerError("\(source): not UTF-8: invalid byte 0x\(String(buffer[bad], radix: 16)) at offset \(consumed + bad)")
                }
                let (cut, known) = atEnd ? (buffer.count, buffer.count) : finalPrefix(buffer, searchFrom: searched)
                encoder.encode(UnsafeBufferPointer(rebasing: buffer[0..<cut]), into: &ids)
                return (cut, known)
            }
            try emit(ids)
            pending.removeFirst(keep)
            consumed += keep
            if pending.count > Self.maximumUncutBytes {
                throw TokenizerError("\(source): more than \(Self.maximumUncutBytes >> 20) MiB from offset \(consumed) without a place where the text can be cut: one pre-token that long (a run of one character class) is more than the tokenizer encodes")
            }
            searched = searchedEnd - keep
            progress?(bytesRead)
            if atEnd { return }
        }
    }

    /// The length of the prefix of `buffer` whose encoding cannot change when more text follows,
    /// and the position up to which `buffer` was searched for a safe cut. Positions below
    /// `searchFrom` were searched in an earlier call and hold none.
    func finalPrefix(_ buffer: UnsafeBufferPointer<UInt8>, searchFrom: Int) -> (prefix: Int, searched: Int) {
        // Held back: a UTF-8 sequence cut by the block end, then text that may start a special
        // token (no special token can then cross `end`).
        var end = buffer.count - UTF8Validation.incompleteSuffixLength(buffer)
        end -= tokenizer.specials.pendingSuffix(UnsafeBufferPointer(rebasing: buffer[0..<end]))
        let text = UnsafeBufferPointer(rebasing: buffer[0..<end])
        var lastSegment: Range<Int>?
        tokenizer.specials.split(text, text: { lastSegment = $0 }, special: { _ in lastSegment = nil })
        // Text that ends with a special token is final as it stands.
        guard let segment = lastSegment else { return (end, end) }
        // The cut at `i` needs the scalar at `i`, so the last position tried is end − 1; the end
        // of a special token (the start of the last segment) is a piece boundary too.
        let from = max(segment.lowerBound + 1, searchFrom)
        let cut = from < end ? SafeCuts.lastSafeCut(text, in: from..<end, specials: tokenizer.specials, rules: tokenizer.rules.preTokenization) : nil
        return (cut ?? segment.lowerBound, max(end, searchFrom))
    }
}
