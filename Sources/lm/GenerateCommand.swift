import ArgumentParser
import Foundation
import Kernels
import Model
import Tokenizer

struct GenerateCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt, streamed as it is produced.",
        discussion: """
        --model is a model directory of ours, a .gguf file or a Hugging Face directory. The prompt is \
        encoded with the model's tokenizer (byte-level BPE, GGUF's or tokenizer.json's with their \
        pre-tokenizer, or llama2.c's tokenizer.bin, which adds BOS); special tokens written in it \
        (<|im_start|>) are those tokens unless --literal-special-tokens. It is processed in one \
        batched pass (prefill); each new token then takes one cached step (decode). Generation \
        stops at the model's end tokens (<|endoftext|>; EOS and end of turn for GGUF and Hugging \
        Face models; BOS or EOS for llama2.c models) or after --max-tokens. When prompt and output fill the context, the latest context_length/2 \
        tokens are kept and generation continues. Prompt and generation speeds go to stderr.
        """)

    @Option(help: "A model directory (config.json, model.safetensors, tokenizer files), a .gguf file or a Hugging Face directory.") var model: String
    @Option(help: "The prompt text.") var prompt: String
    @Option(help: "Most tokens to generate.") var maxTokens: Int = 256
    @Option(help: "Sampling temperature; 0 means greedy.") var temperature: Float = 1
    @Option(help: "Nucleus sampling mass in (0, 1]; 1 samples from the whole distribution.") var topP: Float = 1
    @Option(help: "Seed of the sampler: same seed, same text.") var seed: UInt64 = 0
    @Flag(help: "Encode special tokens written in the prompt as their characters.") var literalSpecialTokens = false
    @Option(help: "A JSON Schema file: the answer is constrained to a JSON document matching it (always parses and validates).")
    var jsonSchema: String?
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var decoding: DecodeOptions
    @OptionGroup var running: ModelRunOptions

    func validate() throws {
        do { try sampling.applied(to: GenerationOptions(maxTokens: maxTokens, temperature: temperature, topP: topP)).validate() } catch let error as GenerationError {
            throw ValidationError("--\(error)")
        }
    }

    func run() throws {
        running.apply()
        let loadStart = DispatchTime.now().uptimeNanoseconds
        let pretrained = try decoding.load(model)
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) * 1e-9
        let lm = pretrained.model
        try sampling.check(vocabularySize: lm.config.vocabSize)
        guard let tokenizer = pretrained.tokenizer else {
            throw ModelError("\(model): no tokenizer files (tokenizer.bin, tokenizer.json, or vocab.json + merges.txt); add them with lm init --tokenizer or lm import llama2c --tokenizer")
        }
        var ids = tokenizer.encodePrompt(prompt)
        if literalSpecialTokens, let bytePairs = tokenizer as? Tokenizer {
            ids = bytePairs.rules.promptPrefix + bytePairs.encode(prompt, parsingSpecialTokens: false)
        }
        guard !ids.isEmpty else { throw ValidationError("--prompt is empty: generation needs at least one token") }
        let stops = tokenizer.stopTokens
        var options = try sampling.applied(to: GenerationOptions(maxTokens: maxTokens, temperature: temperature, topP: topP, seed: seed, stopTokens: stops))
        if let jsonSchema { options.responseSchema = try Self.schema(at: jsonSchema) }
        var decoder = IncrementalDecoder(tokenizer: tokenizer)
        if let last = ids.last { decoder.follow(last) }
        let output = FileHandle.standardOutput
        output.write(Data(prompt.utf8))
        var failure: Error?
        let report = try Generator(model: lm, context: decoding.sessionContext(for: lm), tokenizer: tokenizer).generate(prompt: ids, options: options) { id in
            if stops.contains(id) { return true }
            do {
                // A sampled id beyond the tokenizer's vocabulary (an untrained model) prints as U+FFFD.
                let text = Int(id) < tokenizer.vocabularySize ? try decoder.append(id) : "\u{FFFD}"
                output.write(Data(text.utf8))
            } catch {
                failure = error
                return false
            }
            return true
        }
        output.write(Data((decoder.finish() + "\n").utf8))
        if let failure { throw failure }
        var ending: String
        switch report.ending {
        case .maxTokens: ending = "max tokens reached"
        case .stopToken: ending = "end of text"
        case .documentComplete: ending = "JSON document complete"
        case .stoppedByCaller: ending = "stopped"
        }
        if report.contextSlides > 0 { ending += ", context slid \(report.contextSlides)×" }
        let parts = pretrained.loadSeconds
        let breakdown = parts.weights > 0 ? String(format: " (file %.2f, weights %.2f, tokenizer %.2f)", parts.files, parts.weights, parts.tokenizer) : ""
        // Which instructions the quantized products took: the same file runs at very different speeds on each.
        let products = lm.isQuantized ? " · products: " + QuantizedProductPath.description(eightBitActivations: decoding.eightBitActivations) : ""
        printError(String(format: "load: %.2f s%@ · prefill: %d tokens, %.1f tokens/s · decode: %d tokens, %.1f tokens/s (%@)%@",
                          loadSeconds, breakdown, report.promptTokens, report.promptTokensPerSecond, report.generatedTokens,
                          report.generationTokensPerSecond, ending, products))
    }

    /// The schema in `path`, compiled; errors name the option and the file.
    static func schema(at path: String, option: String = "--json-schema") throws -> JSONSchema {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("\(option): cannot read \(path): \(error.localizedDescription)")
        }
        do { return try JSONSchema(try JSONValue(parsing: data)) } catch let error as ModelError {
            throw ValidationError("\(option) \(path): \(error.message)")
        } catch {
            throw ValidationError("\(option) \(path): not valid JSON")
        }
    }
}
