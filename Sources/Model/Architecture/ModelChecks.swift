import Tokenizer

extension ModelConfig {
    /// Stops unless every id `tokenizer` can produce is a token of this model (the one check of a
    /// tokenizer against a model, wherever the two meet). `source` names where the model came from.
    public func requireFits(_ tokenizer: some TextTokenizer, source: String) throws {
        guard tokenizer.vocabularySize <= vocabSize else {
            throw ModelError("\(source): the tokenizer has \(tokenizer.vocabularySize) tokens but vocab_size is only \(vocabSize)")
        }
    }
}

extension ModelError {
    /// Stops unless every value of tensor `name` read from `path` is finite: a file of NaNs or
    /// infinities would load and then produce garbage.
    static func requireFinite(_ values: UnsafeMutableBufferPointer<Float>, tensor name: String, path: String) throws {
        let bad = values.reduce(0) { $1.isFinite ? $0 : $0 + 1 }
        guard bad == 0 else {
            throw ModelError("\(path): tensor '\(name)' has \(bad) non-finite value\(bad == 1 ? "" : "s") (NaN or infinity) of \(values.count)")
        }
    }
}
