/// How text is split into pieces before byte-pair merging: the rules of the vocabularies this
/// engine reads, named as llama.cpp names them in `tokenizer.ggml.pre`.
///
/// Each rule is llama.cpp's list of patterns applied in turn, every pattern re-splitting the
/// pieces of the one before and keeping the text between its matches as pieces too, so a
/// later pattern never sees across an earlier cut. The patterns are compiled by hand (no
/// regular-expression engine) and scan Unicode scalars left to right in linear time.
public enum PreTokenization: String, Sendable, CaseIterable {
    /// GPT-2's pattern alone (``PreTokenizer``): our own tokenizers, llama.cpp's `gpt-2`.
    case gpt2 = "gpt-2"
    /// Every number scalar (`\p{N}`) a piece of its own, then GPT-2's pattern: llama.cpp's
    /// `smollm` (SmolLM2, StarCoder), Hugging Face's `Digits(individual_digits)` + `ByteLevel`.
    case digitsThenGPT2 = "smollm"
    /// Llama 3's pattern (``Llama3Pattern``): llama.cpp's `llama-bpe`.
    case llama3 = "llama-bpe"
    /// Qwen 2's pattern: Llama 3's with every number scalar a piece of its own (``Llama3Pattern``
    /// with one digit per piece): llama.cpp's `qwen2` (Qwen 2, 2.5, 3).
    case qwen2 = "qwen2"
    /// llama.cpp's `default`: runs of punctuation (`[\p{P}$+<=>^~|]+`), GPT-2's pattern, runs
    /// of numbers, then ASCII digits in threes.
    case llamaCppDefault = "default"

    /// The rule for a `tokenizer.ggml.pre` value, with llama.cpp's aliases; nil when unknown.
    public init?(llamaCppName name: String) {
        switch name {
        case "gpt-2", "phi-2", "jina-es", "jina-de", "mellum": self = .gpt2
        case "smollm", "starcoder", "refact", "codeshell": self = .digitsThenGPT2
        case "llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral": self = .llama3
        case "qwen2", "deepseek-r1-qwen", "megrez": self = .qwen2
        case "default": self = .llamaCppDefault
        default: return nil
        }
    }

    /// Calls `body` with the byte range of each piece of `text` (valid UTF-8), in order.
    public func forEachPiece(in text: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Void) {
        switch self {
        case .gpt2:
            PreTokenizer.forEachPiece(in: text, body)
        case .digitsThenGPT2:
            Self.isolating({ $0 == .number }, in: text, 0..<text.count, runs: false) { range, isMatch in
                if isMatch { body(range) } else { Self.gpt2(text, range, body) }
            }
        case .llama3:
            Llama3Pattern.forEachPiece(in: text, digitsPerPiece: 3, body)
        case .qwen2:
            Llama3Pattern.forEachPiece(in: text, digitsPerPiece: 1, body)
        case .llamaCppDefault:
            Self.isolating({ _ in false }, punctuation: true, in: text, 0..<text.count, runs: true) { outer, _ in
                Self.gpt2(text, outer) { piece in
                    Self.isolating({ $0 == .number }, in: text, piece, runs: true) { numbers, isNumber in
                        guard isNumber else { return body(numbers) }
                        Self.asciiDigitTriples(text, numbers, body)
                    }
                }
            }
        }
    }

    /// The pieces of `text` as strings (for tests and small inputs).
    public func pieces(_ text: String) -> [String] {
        var copy = text
        return copy.withUTF8 { bytes in
            var result: [String] = []
            forEachPiece(in: bytes) { result.append(String(decoding: bytes[$0], as: UTF8.self)) }
            return result
        }
    }

    /// Whether text may be cut at byte `i` (0 < i < count, a scalar start) without changing its
    /// pieces; see ``SafeCuts`` for GPT-2's rule and its proof. The others are stricter.
    func allowsCut(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        var start = i - 1
        while start > 0 && text[start] & 0xC0 == 0x80 { start -= 1 }
        let (before, _) = PreTokenizer.classAt(text, start)
        let (after, _) = PreTokenizer.classAt(text, i)
        switch self {
        case .gpt2, .digitsThenGPT2:
            // A number split off alone leaves GPT-2's rule unchanged on both sides of it.
            return text[start] != UInt8(ascii: "'") && before != .whitespace && after != before
        case .llama3, .qwen2:
            // After a letter or number run, whatever class follows starts a piece of its own
            // (the optional prefix of a letter run excludes letters and numbers).
            return (before == .letter || before == .number) && after != before
        case .llamaCppDefault:
            return before == .letter && after != .letter && after != .number
                && !Self.isPunctuationRun(text, at: i) && text[start] != UInt8(ascii: "'")
        }
    }

    // MARK: - The patterns' pieces

    /// GPT-2's pattern over `range` of `text`, ranges reported in `text`'s offsets.
    private static func gpt2(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        PreTokenizer.forEachPiece(in: UnsafeBufferPointer(rebasing: text[range])) {
            body(($0.lowerBound + range.lowerBound)..<($0.upperBound + range.lowerBound))
        }
    }

    /// Splits `range` into the scalars matching `matches` (or, with `punctuation`, llama.cpp's
    /// punctuation set) and the stretches between them: each match alone, or whole runs with
    /// `runs`. `body` gets each part and whether it matched.
    private static func isolating(_ matches: (ScalarClass) -> Bool, punctuation: Bool = false, in text: UnsafeBufferPointer<UInt8>,
                                  _ range: Range<Int>, runs: Bool, _ body: (Range<Int>, Bool) -> Void) {
        var partStart = range.lowerBound, partMatches = false, index = range.lowerBound
        while index < range.upperBound {
            let (kind, length) = PreTokenizer.classAt(text, index)
            let isMatch = punctuation ? isPunctuationRun(text, at: index) : matches(kind)
            if index > partStart && (isMatch != partMatches || (isMatch && !runs)) {
                body(partStart..<index, partMatches)
                partStart = index
            }
            partMatches = isMatch
            index += length
        }
        if partStart < range.upperBound { body(partStart..<range.upperBound, partMatches) }
    }

    /// Whether the scalar at `index` belongs to `[\p{P}\$\+<=>\^~\|]`.
    static func isPunctuationRun(_ text: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        let byte = text[index]
        if byte < 0x80 {
            // ASCII punctuation (\p{P}) plus $ + < = > ^ ~ |: every printable non-alphanumeric but `.
            return PreTokenizer.asciiClass[Int(byte)] == .other && byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "`")
        }
        let (value, _) = PreTokenizer.scalar(text, index)
        guard let scalar = Unicode.Scalar(value) else { return false }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// `[0-9][0-9][0-9]` over a run of numbers: each triple of ASCII digits from the left a
    /// piece, the rest between them pieces too.
    private static func asciiDigitTriples(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        func isDigit(_ i: Int) -> Bool { i < range.upperBound && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[i]) }
        var gapStart = range.lowerBound, index = range.lowerBound
        while index < range.upperBound {
            if isDigit(index) && isDigit(index + 1) && isDigit(index + 2) {
                if gapStart < index { body(gapStart..<index) }
                body(index..<(index + 3))
                index += 3
                gapStart = index
            } else {
                index += 1
            }
        }
        if gapStart < range.upperBound { body(gapStart..<range.upperBound) }
    }
}
