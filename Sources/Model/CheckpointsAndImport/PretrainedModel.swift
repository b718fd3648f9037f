import ChatTemplate
import Dispatch
import Foundation
import TensorIO
import Tokenizer

/// Everything a model's files give to run it: the weights, the tokenizer, the chat template and
/// the texts of its BOS and EOS tokens (which templates insert), from any of the three layouts:
///
/// | `path` | weights | tokenizer | chat template |
/// | --- | --- | --- | --- |
/// | `model.gguf` | ``GGUFCheckpoint`` | `tokenizer.ggml.*` (``/Tokenizer/GGUFTokenizer``) | `tokenizer.chat_template` |
/// | Hugging Face directory | ``HuggingFaceCheckpoint`` | `tokenizer.json`, stops from `generation_config.json` | `tokenizer_config.json` or `chat_template.jinja` |
/// | our model directory | ``Checkpoint`` (`model.safetensors`), or ``GGUFCheckpoint`` when it holds `model.gguf` (quantized) | ``/Tokenizer/TokenizerDirectory``, stops from `generation_config.json` | `chat_template.jinja` if present |
///
/// ``save(to:storage:)`` writes a model directory of ours with all of it, so an imported model
/// keeps its tokenizer rules, stop tokens and template; its weights Float32 or block-quantized.
public struct PretrainedModel {
    public let path: String
    public let model: TransformerLM
    /// nil when the files hold none (then only token ids can be given).
    public let tokenizer: (any TextTokenizer)?
    /// nil when the files hold none.
    public let chatTemplate: ChatTemplate?
    public let bosText: String
    public let eosText: String
    /// Seconds spent loading: opening and parsing the file(s), the weights (decoded to Float32),
    /// the tokenizer.
    public var loadSeconds: (files: Double, weights: Double, tokenizer: Double) = (0, 0, 0)

    /// Loads `path`; `chatTemplatePath` replaces the files' own template. A template that does
    /// not parse is an error naming its line. With `keepQuantized`, the block-quantized tensors of
    /// a GGUF file (or a quantized model directory's `model.gguf`) stay in their blocks (``GGUFCheckpoint/load(file:keepQuantized:eightBitActivations:)``): faster
    /// decode, a quarter of the memory, no training or saving.
    public static func load(_ path: String, chatTemplatePath: String? = nil, keepQuantized: Bool = false,
                            eightBitActivations: Bool = false) throws -> PretrainedModel {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        guard exists else { throw ModelError("\(path): no such file or directory") }
        var loaded: PretrainedModel
        if !isDirectory.boolValue {
            guard path.hasSuffix(".gguf") else { throw ModelError("\(path): a model is a directory or a .gguf file") }
            loaded = try gguf(path, keepQuantized: keepQuantized, eightBitActivations: eightBitActivations)
        } else if let weights = Checkpoint.quantizedWeights(in: path) {
            let file = try Checkpoint.mapFileErrors { try GGUFFile(path: weights) }
            loaded = try directory(path, model: try GGUFCheckpoint.load(file: file, keepQuantized: keepQuantized, eightBitActivations: eightBitActivations))
        } else if HuggingFaceCheckpoint.isHuggingFaceDirectory(path) {
            loaded = try directory(path, model: try HuggingFaceCheckpoint.load(directory: path))
        } else {
            loaded = try directory(path, model: try Checkpoint.load(directory: path))
        }
        if let chatTemplatePath { loaded = loaded.replacingTemplate(try readTemplate(chatTemplatePath, optional: false)) }
        if let tokenizer = loaded.tokenizer { try loaded.model.config.requireFits(tokenizer, source: path) }
        return loaded
    }

    private func replacingTemplate(_ template: ChatTemplate?) -> PretrainedModel {
        var copy = PretrainedModel(path: path, model: model, tokenizer: tokenizer, chatTemplate: template, bosText: bosText, eosText: eosText)
        copy.loadSeconds = loadSeconds
        return copy
    }

    private static func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }

    private static func gguf(_ path: String, keepQuantized: Bool, eightBitActivations: Bool) throws -> PretrainedModel {
        var start = DispatchTime.now().uptimeNanoseconds
        let file = try Checkpoint.mapFileErrors { try GGUFFile(path: path) }
        let parsed = seconds(since: start)
        start = DispatchTime.now().uptimeNanoseconds
        let model = try GGUFCheckpoint.load(file: file, keepQuantized: keepQuantized, eightBitActivations: eightBitActivations)
        let weights = seconds(since: start)
        start = DispatchTime.now().uptimeNanoseconds
        let tokenizer: (any TextTokenizer)? = file.metadata["tokenizer.ggml.model"] == nil ? nil : try GGUFTokenizer.load(file)
        let tokenizing = seconds(since: start)
        let tokens = file.metadata["tokenizer.ggml.tokens"]?.strings ?? []
        func text(_ key: String) -> String {
            guard let id = file.metadata[key]?.int, tokens.indices.contains(id) else { return "" }
            return tokens[id]
        }
        var template: ChatTemplate?
        if let source = file.metadata["tokenizer.chat_template"]?.string {
            do { template = try ChatTemplate(source) } catch { throw ModelError("\(path): tokenizer.chat_template: \(error)") }
        }
        var loaded = PretrainedModel(path: path, model: model, tokenizer: tokenizer, chatTemplate: template,
                                     bosText: text("tokenizer.ggml.bos_token_id"), eosText: text("tokenizer.ggml.eos_token_id"))
        loaded.loadSeconds = (parsed, weights, tokenizing)
        return loaded
    }

    /// A Hugging Face directory or ours: the same side files around different weights.
    private static func directory(_ directory: String, model: TransformerLM) throws -> PretrainedModel {
        func json(_ name: String) throws -> [String: Any]? {
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            guard let object = try? JSONSerialization.jsonObject(with: try InputFile.read(path)) as? [String: Any] else {
                throw ModelError("\(path): not a JSON object")
            }
            return object
        }
        // Stop at every end-of-sequence id the generation config (else the model config) names.
        let eosValue = try json("generation_config.json")?["eos_token_id"] ?? json("config.json")?["eos_token_id"]
        let stops = (eosValue as? [Int]) ?? (eosValue as? Int).map { [$0] }
        let tokenizerPath = (directory as NSString).appendingPathComponent(TokenizerDirectory.huggingFaceFile)
        let tokenizer = FileManager.default.fileExists(atPath: tokenizerPath)
            ? try HuggingFaceFile.load(path: tokenizerPath, stopTokens: stops?.map { Int32($0) }) : try TokenizerDirectory.loadAny(directory)
        let settings = try json("tokenizer_config.json") ?? [:]
        func tokenText(_ key: String) -> String {
            if let text = settings[key] as? String { return text }
            return (settings[key] as? [String: Any])?["content"] as? String ?? ""
        }
        var source = settings["chat_template"] as? String
        if let named = settings["chat_template"] as? [[String: Any]] {
            source = named.first { $0["name"] as? String == "default" }?["template"] as? String ?? named.first?["template"] as? String
        }
        var template: ChatTemplate?
        if let source {
            do { template = try ChatTemplate(source) } catch { throw ModelError("\(directory)/tokenizer_config.json: chat_template: \(error)") }
        } else {
            template = try readTemplate((directory as NSString).appendingPathComponent("chat_template.jinja"), optional: true)
        }
        return PretrainedModel(path: directory, model: model, tokenizer: tokenizer, chatTemplate: template,
                               bosText: tokenText("bos_token"), eosText: tokenText("eos_token"))
    }

    /// Writes a model directory of ours: the weights (`config.json` and `model.safetensors` in
    /// Float32, or `model.gguf` with the matrices block-quantized, `lm quantize`), the
    /// tokenizer (`tokenizer.json` with its rules, or `tokenizer.bin`), `generation_config.json`
    /// (stop ids), `tokenizer_config.json` (BOS and EOS texts) and `chat_template.jinja`; each
    /// file written whole under a temporary name, then renamed. The other kind of weights file,
    /// if the directory held one, is removed once the new one is complete.
    public func save(to directory: String, storage: GGUFExport.Storage = .float32) throws {
        let gguf = (directory as NSString).appendingPathComponent(Checkpoint.quantizedWeightsFile)
        if storage == .float32 {
            try Checkpoint.save(model, directory: directory)
            try? FileManager.default.removeItem(atPath: gguf)
        } else {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try GGUFExport.write(self, storage: storage, to: gguf)
            for stale in [Checkpoint.weightsFile, Checkpoint.configFile] {
                try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(stale))
            }
        }
        func write(_ name: String, _ data: Data) throws {
            do { try AtomicFile.write(data, to: (directory as NSString).appendingPathComponent(name)) } catch { throw ModelError("\(error)") }
        }
        func jsonData(_ object: Any) throws -> Data {
            try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        }
        switch tokenizer {
        case let bytePairs as Tokenizer:
            do { try TokenizerDirectory.save(bytePairs, to: directory) } catch { throw ModelError("\(error)") }
        case let pieces as SentencePieceTokenizer:
            try write(TokenizerDirectory.sentencePieceFile, pieces.fileData())
        case let pieces as ScoredPieceTokenizer:
            // A GGUF file of tokenizer keys alone: llama.cpp's own description of the vocabulary.
            var writer = GGUFWriter()
            GGUFExport.writeScoredPieces(pieces, eosText: eosText, into: &writer)
            do { try writer.write(to: (directory as NSString).appendingPathComponent(TokenizerDirectory.scoredPiecesFile)) } catch { throw ModelError("\(error)") }
        default: break
        }
        if let tokenizer { try write("generation_config.json", try jsonData(["eos_token_id": tokenizer.stopTokens.sorted().map(Int.init)])) }
        try write("tokenizer_config.json", try jsonData(["bos_token": bosText, "eos_token": eosText]))
        if let chatTemplate { try write("chat_template.jinja", Data(chatTemplate.source.utf8)) }
    }

    private static func readTemplate(_ path: String, optional: Bool) throws -> ChatTemplate? {
        if optional && !FileManager.default.fileExists(atPath: path) { return nil }
        let source: String
        do { source = String(decoding: try InputFile.read(path), as: UTF8.self) } catch { throw ModelError("\(error)") }
        do { return try ChatTemplate(source) } catch { throw ModelError("\(path): \(error)") }
    }
}

extension PretrainedModel {
    /// A model with what runs it, from memory rather than files (`path` names it in messages):
    /// for writing one out with ``save(to:storage:)`` or ``GGUFExport``.
    public init(model: TransformerLM, tokenizer: (any TextTokenizer)? = nil, chatTemplate: ChatTemplate? = nil,
                bosText: String = "", eosText: String = "", path: String = "model") {
        self.init(path: path, model: model, tokenizer: tokenizer, chatTemplate: chatTemplate, bosText: bosText, eosText: eosText)
    }
}
