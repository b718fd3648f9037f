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
        // A value is NaN or infinite exactly when its exponent bits are all ones: the largest
        // exponent field over the buffer, an integer max that vectorises, tells whether to count.
        var largestExponent: UInt32 = 0
        UnsafeRawBufferPointer(values).withMemoryRebound(to: UInt32.self) { bits in
            for word in bits { largestExponent = max(largestExponent, word & 0x7F80_0000) }
        }
        guard largestExponent != 0x7F80_0000 else {
            let bad = values.reduce(0) { $1.isFinite ? $0 : $0 + 1 }
            throw ModelError("\(path): tensor '\(name)' has \(bad) non-finite value\(bad == 1 ? "" : "s") (NaN or infinity) of \(values.count)")
        }
    }
}
