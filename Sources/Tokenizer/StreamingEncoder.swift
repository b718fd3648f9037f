import Foundation

/// Encodes a file of any size in bounded memory, block by block, with exactly the ids that
/// encoding it whole would give.
///
/// Each block is encoded up to the start of its last pre-tokenized piece; that piece, any
/// suffix that may be the start of a special token, and any UTF-8 sequence cut by the block end
/// are carried into the next block. A piece's extent depends only on text from its start up to
/// the scalar after it, so every piece before the carried one is final. Memory is bounded by the
/// block size plus the longest piece (a file that is one long piece is held whole).
public struct StreamingEncoder {
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
                throw TokenizerError("\(path): read failed: \(error.localizedDescription)")
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
        while true {
            let block = try read()
            let atEnd = block.isEmpty
            pending.append(contentsOf: block)
            bytesRead += block.count
            var ids: [Int32] = []
            let keep: Int = try pending.withUnsafeBufferPointer { buffer in
                if let bad = UTF8Validation.firstInvalidOffset(buffer, allowTruncatedEnd: !atEnd) {
                    throw TokenizerError("\(source): not UTF-8: invalid byte 0x\(String(buffer[bad], radix: 16)) at offset \(consumed + bad)")
                }
                let cut = atEnd ? buffer.count : finalPrefix(buffer)
                encoder.encode(UnsafeBufferPointer(rebasing: buffer[0..<cut]), into: &ids)
                return cut
            }
            try emit(ids)
            pending.removeFirst(keep)
            consumed += keep
            progress?(bytesRead)
            if atEnd { return }
        }
    }

    /// Length of the prefix of `buffer` whose encoding cannot change when more text follows.
    func finalPrefix(_ buffer: UnsafeBufferPointer<UInt8>) -> Int {
        var end = buffer.count - UTF8Validation.incompleteSuffixLength(buffer)
        end -= tokenizer.specials.pendingSuffix(UnsafeBufferPointer(rebasing: buffer[0..<end]))
        // The last piece of the last ordinary-text segment is carried; text that ends with a
        // special token is final as it stands.
        let text = UnsafeBufferPointer(rebasing: buffer[0..<end])
        var lastSegment: Range<Int>?
        tokenizer.specials.split(text, text: { lastSegment = $0 }, special: { _ in lastSegment = nil })
        guard let segmentRange = lastSegment else { return end }
        // Scanning can start at any place that is certainly a piece boundary: a safe cut near
        // the end when there is one, else the segment start.
        let tailStart = max(segmentRange.lowerBound, segmentRange.upperBound - 65_536)
        let scanStart = SafeCuts.safeCut(text, from: tailStart, specials: tokenizer.specials)
            .flatMap { $0 < segmentRange.upperBound ? $0 : nil } ?? segmentRange.lowerBound
        var lastPiece = scanStart
        let segment = UnsafeBufferPointer(rebasing: text[scanStart..<segmentRange.upperBound])
        PreTokenizer.forEachPiece(in: segment) { lastPiece = scanStart + $0.lowerBound }
        return lastPiece
    }
}
