import Foundation

/// One line of a run's `metrics.jsonl`: the mean training loss since the previous line, and on
/// evaluation lines the validation loss in nats per token and in bits per byte of text.
public struct TrainingRecord: Codable, Sendable, Equatable {
    public var step: Int
    /// Tokens trained on so far.
    public var tokens: Int
    public var trainLoss: Double
    public var learningRate: Double
    public var valLoss: Double?
    public var valBitsPerByte: Double?
    /// Wall time of training so far, across resumes.
    public var elapsedSeconds: Double

    enum CodingKeys: String, CodingKey {
        case step, tokens
        case trainLoss = "train_loss", learningRate = "lr", valLoss = "val_loss", valBitsPerByte = "val_bits_per_byte"
        case elapsedSeconds = "elapsed_s"
    }

    /// `metrics.jsonl`: one JSON object per line.
    static func jsonLines(_ records: [TrainingRecord]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = Data()
        for record in records {
            data.append(try encoder.encode(record))
            data.append(0x0A)
        }
        return data
    }

    static func parse(jsonLines data: Data, path: String) throws -> [TrainingRecord] {
        let decoder = JSONDecoder()
        return try data.split(separator: 0x0A).enumerated().map { number, line in
            do { return try decoder.decode(TrainingRecord.self, from: Data(line)) } catch {
                throw ModelError("\(path): line \(number + 1) is not a metrics record")
            }
        }
    }
}

/// What a run keeps beside its weights and optimizer moments to continue exactly:
/// `training_state.json`, written last at every checkpoint.
struct TrainingState: Codable {
    var step: Int
    var tokens: Int
    /// The batch sampler's generator state, as a decimal string (JSON numbers lose 64-bit integers).
    var samplerState: String
    var elapsedSeconds: Double
    var options: TrainingOptions
    /// Absolute paths of the token files, and the held-out fraction when validation is a split.
    var trainingData: String
    var validationData: String?
    var validationFraction: Double?
    /// What the checkpoint's weights were when this state was written: their configuration and
    /// a 64-bit digest of their bits (hexadecimal). Absent in runs written before they were kept.
    var config: ModelConfig?
    var weightsFingerprint: String?
    /// A LoRA run: the adapter's settings and the base model it trains on (an absolute path,
    /// loaded again on resume); the checkpoint then holds the adapter, not the model.
    var lora: LoRAAdapter.Settings?
    var baseModel: String?
    /// Whether the base kept its quantized blocks (QLoRA): a resume loads it the same way.
    var baseQuantized: Bool?

    /// Records the configuration and the weights' fingerprint as the ones this state goes with.
    mutating func recordWeights(config: ModelConfig, fingerprint: UInt64) {
        self.config = config
        weightsFingerprint = String(fingerprint, radix: 16)
    }

    /// Stops unless `model` (loaded from `folder`) is what this state recorded, naming what
    /// differs; in a LoRA run, the base model's configuration and the adapter's values.
    func requireRecorded(_ model: TransformerLM, adapter: LoRAAdapter?, in folder: String) throws {
        if let config, config != model.config {
            let source = adapter == nil ? "config.json" : "the base model \(baseModel ?? "")"
            throw ModelError("\(folder): \(source) differs from the configuration the run was training (\(config)); resume with the original configuration, or pass --accept-changed-checkpoint")
        }
        if let weightsFingerprint, weightsFingerprint != String(Trainer.fingerprint(adapter?.parameters ?? model.parameters), radix: 16) {
            let file = adapter == nil ? Checkpoint.weightsFile : PEFTAdapter.weightsFile
            throw ModelError("\(folder): \(file) is not the weights this checkpoint wrote (another run's, or edited); pass --accept-changed-checkpoint to train on from them anyway")
        }
    }
}
