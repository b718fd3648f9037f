import Foundation
import TensorIO

/// The fields a family's configuration is read from, whichever file holds them: a GGUF file's
/// `<architecture>.*` metadata keys, or a Hugging Face `config.json`. Typed look-ups whose
/// errors name the file and the key.
public struct ConfigFields {
    /// The file the fields come from, for messages.
    public let source: String
    /// Put before every key: `gemma3.` in a GGUF file, nothing in `config.json`.
    public let prefix: String
    /// GGUF metadata (messages say "metadata key") or JSON ("field").
    private let isMetadata: Bool
    /// Put before every key in messages only: the path of a nested JSON object (`rope_parameters.`).
    private let label: String
    private let lookup: (String) -> Any?

    private init(source: String, prefix: String, isMetadata: Bool, label: String, lookup: @escaping (String) -> Any?) {
        (self.source, self.prefix, self.isMetadata, self.label, self.lookup) = (source, prefix, isMetadata, label, lookup)
    }

    /// The metadata of a GGUF file, keys under `architecture.`.
    init(gguf file: GGUFFile, architecture: String) {
        func plain(_ value: GGUFValue) -> Any {
            switch value {
            case .unsigned(let number): number <= UInt64(Int.max) ? Int(number) : Double(number)
            case .signed(let number): Int(number)
            case .float(let number): number
            case .bool(let flag): flag
            case .string(let text): text
            case .array(let values): values.map(plain)
            }
        }
        self.init(source: file.path, prefix: architecture + ".", isMetadata: true, label: "") { key in file.metadata[key].map(plain) }
    }

    /// A JSON object (`config.json`, or an object inside it).
    init(json: [String: Any], source: String, label: String = "") {
        self.init(source: source, prefix: "", isMetadata: false, label: label) { key in
            let value = json[key]
            return value is NSNull ? nil : value
        }
    }

    /// Whether `key` is present (and not null).
    public func has(_ key: String) -> Bool { lookup(prefix + key) != nil }

    private func wrong(_ key: String, _ value: Any, _ expected: String) -> ModelError {
        ModelError("\(source): \(what(key)) is \(value), not \(expected)")
    }

    /// How messages name `key`: a metadata key in GGUF, a field in JSON.
    func what(_ key: String) -> String { isMetadata ? "metadata key '\(prefix + key)'" : "field '\(label + key)'" }

    public func integer(_ key: String) throws -> Int? {
        guard let value = lookup(prefix + key) else { return nil }
        if let number = value as? Int, !(value is Bool) { return number }
        if let number = value as? NSNumber, let exact = Int(exactly: number.doubleValue) { return exact }
        throw wrong(key, value, "an integer")
    }

    public func integer(_ key: String, default fallback: Int) throws -> Int { try integer(key) ?? fallback }

    /// A size the model cannot be built without (layers, heads, widths, vocabulary): present and
    /// at least 1, so nothing downstream builds a range or buffer from a negative count.
    public func required(_ key: String) throws -> Int {
        guard let value = try integer(key) else { throw ModelError("\(source): \(what(key)) is missing") }
        guard value >= 1 else { throw ModelError("\(source): \(what(key)) is \(value); it must be a positive integer") }
        return value
    }

    public func number(_ key: String) throws -> Double? {
        guard let value = lookup(prefix + key) else { return nil }
        if let number = value as? Double { return number }
        if let number = value as? Int, !(value is Bool) { return Double(number) }
        if let number = value as? NSNumber { return number.doubleValue }
        throw wrong(key, value, "a number")
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let value = lookup(prefix + key) else { return nil }
        if let flag = value as? Bool { return flag }
        throw wrong(key, value, "true or false")
    }

    public func string(_ key: String) throws -> String? {
        guard let value = lookup(prefix + key) else { return nil }
        guard let text = value as? String else { throw wrong(key, value, "a string") }
        return text
    }

    public func strings(_ key: String) throws -> [String]? {
        guard let value = lookup(prefix + key) else { return nil }
        guard let texts = value as? [String] else { throw wrong(key, value, "a list of strings") }
        return texts
    }

    /// The JSON object under `key`, read with the same rules (messages name `key.inner`).
    public func object(_ key: String) throws -> ConfigFields? {
        guard let value = lookup(prefix + key) else { return nil }
        guard let object = value as? [String: Any] else { throw wrong(key, value, "an object") }
        return ConfigFields(json: object, source: source, label: label + key + ".")
    }
}
