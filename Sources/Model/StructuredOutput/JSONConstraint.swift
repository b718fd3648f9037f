/// Constrained decoding: at each step only the tokens whose text keeps the answer a valid prefix
/// of a JSON document matching the schema can be sampled, so the answer always parses and
/// validates. A ``LogitProcessor``: it sets every other token's logit to −∞, and the stop tokens'
/// too until the document is whole.
///
/// The mask walks the vocabulary in byte order (``TokenVocabulary``) with the recognizer, reading
/// each shared prefix once and skipping every token under a refused prefix; inside a string
/// without a format the tokens of plain characters that fit its length are allowed without
/// being read.
public struct JSONConstraint: LogitProcessor {
    public let schema: JSONSchema
    let vocabulary: TokenVocabulary
    let stops: Set<Int32>
    /// The answer so far, read.
    public private(set) var recognizer: JSONRecognizer
    private var allowed: [Bool]
    /// Recognizers for the prefix being walked, by depth (reused between steps).
    private var path: [JSONRecognizer] = []

    public init(schema: JSONSchema, vocabulary: TokenVocabulary, stops: Set<Int32>) {
        self.schema = schema
        self.vocabulary = vocabulary
        self.stops = stops
        recognizer = JSONRecognizer(schema)
        allowed = [Bool](repeating: false, count: vocabulary.vocabularySize)
    }

    /// Whether the answer is a whole document that no further text could extend: decoding ends.
    public var isFinished: Bool { recognizer.isComplete && recognizer.ways.allSatisfy { $0.frames.isEmpty } }

    /// Tokens allowed next, as flags by id (stop tokens when the document is whole).
    public mutating func allowedTokens() -> [Bool] {
        for index in allowed.indices { allowed[index] = false }
        if let room = recognizer.plainRoom {
            // Plain pieces of up to `room` characters (they are sorted by length), then the others read.
            for (index, id) in vocabulary.plain.enumerated() {
                if vocabulary.plainLength[index] > room { break }
                allowed[Int(id)] = true
            }
            walk(vocabulary.walkSpecial)
        } else {
            walk(vocabulary.walkAll)
        }
        if recognizer.isComplete { for id in stops where Int(id) < allowed.count { allowed[Int(id)] = true } }
        return allowed
    }

    /// Marks the tokens of `pieces` whose whole piece the recognizer reads.
    private mutating func walk(_ pieces: TokenVocabulary.Walk) {
        if path.isEmpty { path = [recognizer] } else { path[0] = recognizer }
        var valid = 0  // depth up to which `path` holds the current piece's prefix
        var refused = Int.max  // a prefix of this length was refused: pieces sharing it are skipped
        pieces.bytes.withUnsafeBufferPointer { bytes in
            pieces.starts.withUnsafeBufferPointer { starts in
                pieces.lcp.withUnsafeBufferPointer { lcp in
                    for index in 0..<lcp.count {
                        let shared = lcp[index]
                        if shared >= refused { continue }
                        refused = .max
                        let start = starts[index], count = starts[index + 1] - start
                        var depth = min(shared, valid)
                        while depth < count {
                            var next = path[depth]
                            next.read(bytes[start + depth])
                            if depth + 1 < path.count { path[depth + 1] = next } else { path.append(next) }
                            depth += 1
                            if !next.isAlive { refused = depth; break }
                        }
                        valid = refused == .max ? depth : refused - 1
                        if refused == .max { allowed[Int(pieces.ids[index])] = true }
                    }
                }
            }
        }
    }

    public mutating func process(_ logits: UnsafeMutableBufferPointer<Float>) {
        let flags = allowedTokens()
        for index in logits.indices where index >= flags.count || !flags[index] { logits[index] = -.infinity }
    }

    public mutating func learn(_ token: Int32) {
        guard Int(token) < vocabulary.position.count, case let index = vocabulary.position[Int(token)], index >= 0 else { return }
        recognizer.read(vocabulary.walkAll.piece(index))
    }
}
