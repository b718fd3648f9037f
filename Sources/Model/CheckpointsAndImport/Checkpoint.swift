import Foundation
import Kernels
import TensorIO
import Tokenizer

/// A model on disk is a directory: `config.json`, `model.safetensors` (CS336 state-dict names,
/// weights `[out, in]`) and, when present, the tokenizer files. A model saved by PyTorch with
/// `safetensors.torch.save_file(model.state_dict(), …)` loads unchanged, and ours loads there.
public enum Checkpoint {
    public static let configFile = "config.json"
    public static let weightsFile = "model.safetensors"
    /// The weights of a quantized model directory of ours (`lm quantize`): a GGUF file holding
    /// the configuration too (``GGUFExport``), in place of `config.json` and `model.safetensors`.
    public static let quantizedWeightsFile = "model.gguf"

    /// `directory`'s `model.gguf` when it is a quantized model directory of ours, else nil.
    public static func quantizedWeights(in directory: String) -> String? {
        let path = (directory as NSString).appendingPathComponent(quantizedWeightsFile)
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// Loads `directory/config.json` and `directory/model.safetensors`. F32, F16 and BF16 (and
    /// F64) tensors are decoded straight from the memory-mapped file into the parameter buffer.
    /// Errors name the file and the tensor: missing, unexpected, wrong shape, wrong dtype.
    public static func load(directory: String) throws -> TransformerLM {
        let config = try ModelConfig.load(path: (directory as NSString).appendingPathComponent(configFile))
        return try load(weights: (directory as NSString).appendingPathComponent(weightsFile), config: config)
    }

    /// A model from `path`: a model directory of ours (``load(directory:)``, or its
    /// `model.gguf` when quantized, decoded to Float32), a llama.cpp
    /// `.gguf` file (``GGUFCheckpoint/load(path:)``, dequantized) or a Hugging Face directory
    /// (``HuggingFaceCheckpoint/load(directory:)``).
    public static func load(modelAt path: String) throws -> TransformerLM {
        var isDirectory: ObjCBool = false
        if path.hasSuffix(".gguf"), FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            return try GGUFCheckpoint.load(path: path)
        }
        if let quantized = quantizedWeights(in: path) { return try GGUFCheckpoint.load(path: quantized) }
        if HuggingFaceCheckpoint.isHuggingFaceDirectory(path) { return try HuggingFaceCheckpoint.load(directory: path) }
        return try load(directory: path)
    }

    /// Loads weights for `config` from a safetensors file.
    public static func load(weights path: String, config: ModelConfig) throws -> TransformerLM {
        try config.validate()
        let file = try SafeTensorsFile(path: path)
        let layout = ParameterLayout(config: config)
        let expected = Set(layout.entries.map(\.name))
        if let unexpected = file.entries.map(\.name).sorted().first(where: { !expected.contains($0) }) {
            throw ModelError("\(path): unexpected tensor '\(unexpected)' (not part of a model with this config)")
        }
        // The file's header against the configuration, before the parameters are allocated.
        for entry in layout.entries {
            let stored: TensorEntry
            do { stored = try file.entry(entry.name) } catch let error as TensorFileError { throw ModelError(error.description) }
            guard stored.shape == entry.shape else {
                throw ModelError("\(path): tensor '\(entry.name)' has shape \(ShapeText.abbreviated(stored.shape)), expected \(entry.shape) by the configuration")
            }
            guard stored.type.isFloatingPoint else {
                throw ModelError("\(path): tensor '\(entry.name)' is \(stored.type.rawValue), expected a floating-point dtype")
            }
        }
        let parameters = TensorBuffer(count: layout.totalCount)
        for entry in layout.entries {
            let values = parameters.slice(entry.offset, entry.count)
            do {
                try file.read(entry.name, shape: entry.shape, into: values)
            } catch let error as TensorFileError {
                throw ModelError(error.description)
            }
            try ModelError.requireFinite(values, tensor: entry.name, path: path)
        }
        try mapFileErrors { try file.requireIntact() }
        return try TransformerLM(config: config, parameters: parameters)
    }

    /// The tokenizer stored with the model, or nil when the directory has none.
    public static func loadTokenizer(directory: String) throws -> Tokenizer? {
        let names = [TokenizerDirectory.huggingFaceFile, TokenizerDirectory.vocabFile]
        guard names.contains(where: { FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent($0)) }) else {
            return nil
        }
        return try TokenizerDirectory.load(directory)
    }

    /// Writes `config.json` and `model.safetensors` (F32) into `directory`, creating it when
    /// needed. Each file is written to a temporary name and renamed, so an interrupted save never
    /// leaves a half-written checkpoint.
    public static func save(_ model: TransformerLM, directory: String) throws {
        try model.requireDense(for: "saving a model")
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ModelError("\(directory): cannot create directory: \(SystemErrorText.describe(error))")
        }
        try write(model.parameters, layout: model.layout, to: (directory as NSString).appendingPathComponent(weightsFile))
        try model.config.save(path: (directory as NSString).appendingPathComponent(configFile))
    }

    /// Writes a buffer laid out by `layout` (parameters, gradients, optimizer moments) as F32
    /// safetensors under the layout's tensor names, streamed from the buffer without a copy.
    public static func write(_ buffer: TensorBuffer, layout: ParameterLayout, metadata: [String: String] = ["format": "pt"], to path: String) throws {
        precondition(buffer.count == layout.totalCount, "Checkpoint.write: buffer of \(buffer.count) values, layout needs \(layout.totalCount)")
        let views = layout.entries.map { TensorView(name: $0.name, shape: $0.shape, values: buffer.view($0.offset, $0.count)) }
        do {
            try SafeTensorsWriter.write(views: views, metadata: metadata, to: path)
        } catch let error as TensorFileError {
            throw ModelError(error.description)
        }
    }
}
