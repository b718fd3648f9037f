import ArgumentParser
import Model
import TensorIO

struct LogitsCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "logits", abstract: "Run the model on token ids and write the logits as float32 NPY [B, T, vocab].")

    @Option(help: "The model directory.")
    var model: String

    @Option(help: "Token ids as NPY, int32 or int64, shape [T] or [B, T].")
    var tokens: String

    @Option(help: "Where to write the logits (.npy).")
    var output: String

    @OptionGroup var threading: ThreadOptions

    func run() throws {
        threading.apply()
        let ids = try NPYFile(path: tokens)
        guard ids.type == .int32 || ids.type == .int64 else {
            throw ModelError("\(tokens): token ids must be int32 or int64, found \(ids.type.rawValue)")
        }
        let (batch, length): (Int, Int)
        switch ids.shape.count {
        case 1: (batch, length) = (1, ids.shape[0])
        case 2: (batch, length) = (ids.shape[0], ids.shape[1])
        default: throw ModelError("\(tokens): token ids must have shape [T] or [B, T], found \(ids.shape)")
        }
        let values = try ids.integers()
        if let bad = values.firstIndex(where: { $0 < Int(Int32.min) || $0 > Int(Int32.max) }) {
            throw ModelError("\(tokens): id \(values[bad]) at index \(bad) is out of range")
        }
        let lm = try Checkpoint.load(directory: model)
        let logits: [Float]
        do {
            logits = try lm.forward(tokens: values.map { Int32($0) }, batch: batch, length: length)
        } catch let error as ModelError {
            throw ModelError("\(tokens): \(error.message)")
        }
        try NPYWriter.write(logits, shape: [batch, length, lm.config.vocabSize], to: output)
    }
}
