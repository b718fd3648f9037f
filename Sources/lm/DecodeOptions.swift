import ArgumentParser
import Model

/// How `lm generate` and `lm chat` hold a model for decoding: its blocks kept or decoded, the
/// activation precision of the quantized products, and how many tokens the session holds.
struct DecodeOptions: ParsableArguments {
    @Flag(help: "Decode a GGUF file's (or a quantized model directory's) block-quantized weights to Float32 instead of keeping their blocks (slower decode, 4–7× the memory; the exact dequantized model).")
    var dequantize = false
    @Flag(help: "Round activations to 8 bits in the quantized decode products, as llama.cpp does (faster; the logits move by the rounding).")
    var eightBitActivations = false
    @Option(help: "Most tokens held (prompt and output; the KV cache is sized for them). Default: the model's context, at most 8,192.")
    var context: Int?
    @Option(help: "A LoRA adapter to apply, unmerged (a PEFT adapter directory, or an lm train --lora-rank run).")
    var adapter: String?

    func validate() throws {
        if let context, context < 1 { throw ValidationError("--context must be at least 1, got \(context)") }
    }

    /// The tokens a session for `model` holds.
    func sessionContext(for model: TransformerLM) -> Int { context ?? min(model.config.contextLength, 8192) }

    /// Loads `path` as these options ask, with the adapter applied.
    func load(_ path: String, chatTemplatePath: String? = nil) throws -> PretrainedModel {
        let pretrained = try PretrainedModel.load(path, chatTemplatePath: chatTemplatePath, keepQuantized: !dequantize,
                                                  eightBitActivations: eightBitActivations)
        if let adapter { try PEFTAdapter.apply(directory: adapter, to: pretrained.model) }
        return pretrained
    }
}
