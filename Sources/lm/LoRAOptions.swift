import ArgumentParser
import Model

/// `lm train`'s LoRA settings: with `--lora-rank` the model stays frozen (its blocks kept as a
/// GGUF file stores them: QLoRA) and only low-rank adapters train.
struct LoRAOptions: ParsableArguments {
    @Option(help: "Train LoRA adapters of this rank instead of the whole model (needs --model; the run writes a PEFT adapter).")
    var loraRank: Int?
    @Option(help: "The adapters' alpha: they add (alpha / rank) · B·A (default: 2 × rank).") var loraAlpha: Double?
    @Option(help: "Dropout on the adapters' input in training (PEFT's lora_dropout).") var loraDropout = 0.0
    @Option(help: "Projections adapted in every layer, from q,k,v,o,gate,up,down.") var loraTargets = "q,k,v,o,gate,up,down"
    @Flag(help: "With --lora-rank on a GGUF model: decode its blocks to Float32 instead of keeping them (plain LoRA; 4–7× the memory).")
    var dequantizeBase = false

    func validate() throws {
        guard let loraRank else {
            if loraAlpha != nil || loraDropout != 0 || loraTargets != "q,k,v,o,gate,up,down" || dequantizeBase {
                throw ValidationError("--lora-alpha, --lora-dropout, --lora-targets and --dequantize-base need --lora-rank")
            }
            return
        }
        guard loraRank >= 1 else { throw ValidationError("--lora-rank must be at least 1, got \(loraRank)") }
        _ = try targets()
        if let loraAlpha, !(loraAlpha.isFinite && loraAlpha > 0) { throw ValidationError("--lora-alpha must be a positive number, got \(loraAlpha)") }
        guard loraDropout >= 0, loraDropout < 1 else { throw ValidationError("--lora-dropout must be in [0, 1), got \(loraDropout)") }
    }

    /// `--lora-targets` read.
    func targets() throws -> [LoRATarget] {
        try CommaSeparatedList.parse(loraTargets, option: "--lora-targets", kind: "one of q, k, v, o, gate, up, down") { LoRATarget(rawValue: $0) }
    }

    /// The adapter's settings, when LoRA is asked for.
    func settings() throws -> LoRAAdapter.Settings? {
        guard let loraRank else { return nil }
        return LoRAAdapter.Settings(rank: loraRank, alpha: loraAlpha, targets: try targets(), dropout: loraDropout)
    }
}
