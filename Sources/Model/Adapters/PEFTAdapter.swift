import Foundation
import Kernels
import TensorIO

/// LoRA adapters in Hugging Face PEFT's files, which `peft.PeftModel.from_pretrained` loads onto
/// the transformers model: `adapter_config.json` (`peft_type` LORA, `r`, `lora_alpha`,
/// `target_modules`, …) and `adapter_model.safetensors` with PEFT's names
/// (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` [r, in], `…lora_B.weight`
/// [out, r]). Llama's q and k rows are stored in transformers' rotate-half order and ours are
/// interleaved (as for the weights): their B rows are permuted on the way in and out.
public enum PEFTAdapter {
    public static let configFile = "adapter_config.json", weightsFile = "adapter_model.safetensors"

    /// PEFT's name of an adapter tensor.
    static func peftName(_ target: LoRATarget, layer: Int, matrix: String) -> String {
        "base_model.model.model.layers.\(layer).\(target.huggingFacePath).lora_\(matrix).weight"
    }

    /// Whether `directory` holds an adapter (its `adapter_config.json`).
    public static func isAdapter(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(configFile))
    }

    /// Writes `adapter` into `directory` (created when missing), each file atomically; `metadata`
    /// goes into the safetensors header (a checkpoint's step). `baseModel` is recorded as PEFT's
    /// `base_model_name_or_path`.
    public static func write(_ adapter: LoRAAdapter, to directory: String, baseModel: String?, metadata: [String: String] = [:]) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ModelError("\(directory): cannot create: \(SystemErrorText.describe(error))")
        }
        let settings = adapter.settings, config = adapter.config
        var tensors: [NamedTensor] = []
        for layer in 0..<config.numLayers {
            for target in settings.targets {
                for matrix in ["A", "B"] {
                    let entry = adapter.layout.required(LoRAAdapter.name(of: target, layer: layer, matrix: matrix))
                    var values = Array(adapter.parameters.view(entry.offset, entry.count))
                    if matrix == "B", permutesRows(target, config) {
                        values = values.withUnsafeMutableBufferPointer { ours in
                            // Transformers' row r is our row interleavedRow(r).
                            (0..<entry.shape[0]).flatMap { row in
                                let source = HuggingFaceCheckpoint.interleavedRow(row, headSize: config.headDim) * entry.shape[1]
                                return Array(ours[source..<(source + entry.shape[1])])
                            }
                        }
                    }
                    tensors.append(NamedTensor(name: peftName(target, layer: layer, matrix: matrix), shape: entry.shape, values: values))
                }
            }
        }
        var object: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": settings.rank, "lora_alpha": settings.alpha,
            "lora_dropout": settings.dropout, "target_modules": settings.targets.map(\.moduleName), "bias": "none",
            "fan_in_fan_out": false, "use_rslora": settings.rankStabilized, "inference_mode": true, "init_lora_weights": true,
            "modules_to_save": NSNull(), "layers_to_transform": NSNull(), "rank_pattern": [String: Any](), "alpha_pattern": [String: Any](),
        ]
        object["base_model_name_or_path"] = baseModel ?? NSNull()
        let json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try Checkpoint.mapFileErrors {
            try SafeTensorsWriter.write(tensors, metadata: metadata.merging(["format": "pt"]) { mine, _ in mine },
                                        to: (directory as NSString).appendingPathComponent(weightsFile))
            try AtomicFile.write(json, to: (directory as NSString).appendingPathComponent(configFile))
        }
    }

    /// The adapter in `directory` for a model of `config`. Throws naming the file and the key or
    /// tensor: not a LoRA adapter, settings this engine does not apply (bias training, per-layer
    /// ranks, modules saved whole, `fan_in_fan_out`), or tensors that do not fit the model
    /// (an adapter for another base).
    public static func read(directory: String, config: ModelConfig) throws -> LoRAAdapter {
        let configPath = (directory as NSString).appendingPathComponent(configFile)
        let data: Data
        do { data = try InputFile.read(configPath) } catch let error as TensorFileError { throw ModelError(error.description) }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError("\(configPath): not a JSON object")
        }
        func fail(_ key: String, _ message: String) -> ModelError { ModelError("\(configPath): '\(key)' \(message)") }
        guard (object["peft_type"] as? String) == "LORA" else { throw fail("peft_type", "is \(object["peft_type"] ?? "missing"), not LORA") }
        guard let rank = object["r"] as? Int else { throw fail("r", "is missing or not an integer") }
        guard let alpha = (object["lora_alpha"] as? NSNumber)?.doubleValue else { throw fail("lora_alpha", "is missing or not a number") }
        let modules: [String]
        if let list = object["target_modules"] as? [String] {
            modules = list
        } else if let text = object["target_modules"] as? String {
            throw fail("target_modules", "is a pattern ('\(text)'); list the modules (q_proj, k_proj, …)")
        } else {
            throw fail("target_modules", "is missing")
        }
        var targets: [LoRATarget] = []
        for module in modules {
            guard let target = LoRATarget.named(module: module) else {
                throw fail("target_modules", "names '\(module)', which is not one of \(LoRATarget.allCases.map(\.moduleName).joined(separator: ", "))")
            }
            targets.append(target)
        }
        if let bias = object["bias"] as? String, bias != "none" { throw fail("bias", "is '\(bias)': trained biases are not applied here") }
        if object["fan_in_fan_out"] as? Bool == true { throw fail("fan_in_fan_out", "is true (a GPT-2 style Conv1D adapter)") }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let pattern = object[key] as? [String: Any], !pattern.isEmpty { throw fail(key, "sets ranks per module, which is not applied here") }
        }
        for key in ["modules_to_save", "layers_to_transform"] where !(object[key] == nil || object[key] is NSNull) {
            throw fail(key, "is set, which is not applied here")
        }
        if object["use_dora"] as? Bool == true { throw fail("use_dora", "is true: DoRA is not LoRA") }
        let settings = LoRAAdapter.Settings(rank: rank, alpha: alpha, targets: targets,
                                            dropout: (object["lora_dropout"] as? NSNumber)?.doubleValue ?? 0,
                                            rankStabilized: object["use_rslora"] as? Bool ?? false)
        do { try settings.validate(for: config) } catch let error as ModelError { throw ModelError("\(configPath): \(error.message)") }

        let weightsPath = (directory as NSString).appendingPathComponent(weightsFile)
        let file = try Checkpoint.mapFileErrors { try SafeTensorsFile(path: weightsPath) }
        let layout = try LoRAAdapter.layout(settings: settings, config: config)
        let parameters = TensorBuffer(count: layout.totalCount)
        let stored = Set(file.entries.map(\.name))
        var expected = Set<String>()
        for layer in 0..<config.numLayers {
            for target in settings.targets {
                for matrix in ["A", "B"] {
                    let entry = layout.required(LoRAAdapter.name(of: target, layer: layer, matrix: matrix))
                    let name = peftName(target, layer: layer, matrix: matrix)
                    expected.insert(name)
                    let values = parameters.slice(entry.offset, entry.count)
                    guard stored.contains(name) else {
                        throw ModelError("\(weightsPath): tensor '\(name)' is missing (the adapter's config names \(target.moduleName) in every layer)")
                    }
                    do { try file.read(name, shape: entry.shape, into: values) } catch let error as TensorFileError {
                        throw ModelError("\(error.description) (an adapter for another base model?)")
                    }
                    try ModelError.requireFinite(values, tensor: name, path: weightsPath)
                    if matrix == "B", permutesRows(target, config) {
                        HuggingFaceCheckpoint.permuteForInterleavedRoPE(values, rows: entry.shape[0], columns: entry.shape[1], headSize: config.headDim)
                    }
                }
            }
        }
        if let stray = stored.sorted().first(where: { !expected.contains($0) }) {
            throw ModelError("\(weightsPath): tensor '\(stray)' is not a LoRA tensor of this model (\(config.numLayers) layers, targets \(targets.map(\.moduleName).joined(separator: ", ")))")
        }
        try Checkpoint.mapFileErrors { try file.requireIntact() }
        return try LoRAAdapter(settings: settings, config: config, parameters: parameters)
    }

    /// Reads the adapter in `directory` (``read(directory:config:)``) and applies it to `model`
    /// unmerged (``TransformerLM/apply(adapter:)``).
    public static func apply(directory: String, to model: TransformerLM) throws {
        try model.apply(adapter: try read(directory: directory, config: model.config))
    }

    /// Whether the target's B rows are q or k rows that our interleaved RoPE reorders (Llama).
    private static func permutesRows(_ target: LoRATarget, _ config: ModelConfig) -> Bool {
        config.architecture.ropeStyle == .interleaved && (target == .q || target == .k)
    }
}
