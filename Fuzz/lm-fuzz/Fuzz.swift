import ChatTemplate
import Foundation
import Model
import TensorIO
import Tokenizer

// libFuzzer entry point for the file formats the engine reads from outside: each input is
// written to a scratch file and opened the way `lm` opens it. Any trap (overflow, failed
// precondition, crash) is a finding; an error thrown with a message is the expected outcome.
// The format comes from LM_FUZZ_TARGET; scripts/fuzz.sh builds and runs every target.

private let target = ProcessInfo.processInfo.environment["LM_FUZZ_TARGET"] ?? "npy"
private let scratch: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let directory = (base as NSString).appendingPathComponent("lm-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory
}()

private func file(_ name: String, _ bytes: UnsafeBufferPointer<UInt8>) -> String {
    let path = (scratch as NSString).appendingPathComponent(name)
    FileManager.default.createFile(atPath: path, contents: Data(buffer: bytes))
    return path
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    switch target {
    case "safetensors":
        if let file = try? SafeTensorsFile(path: file("t.safetensors", bytes)) {
            for entry in file.entries where entry.elementCount <= 1 << 16 {
                _ = try? entry.type.isFloatingPoint ? file.floats(entry.name).count : file.integers(entry.name).count
            }
        }
    case "npy":
        if let array = try? NPYFile(path: file("a.npy", bytes)), array.elementCount <= 1 << 16 {
            _ = try? array.type.isFloatingPoint ? array.floats().count : array.integers().count
        }
    case "config":
        if let config = try? ModelConfig.load(path: file("config.json", bytes)) {
            _ = ParameterLayout(config: config).totalCount
            // Small enough to run: every architecture a config can state goes through a forward
            // and a cached step (windows, head sizes, norms, scales).
            if let count = config.checkedParameterCount, count <= 1 << 16, config.contextLength <= 64,
               let model = try? TransformerLM(config: config, seed: 1) {
                let length = min(3, config.contextLength), tokens = [Int32](repeating: 0, count: length)
                _ = try? model.forward(tokens: tokens, batch: 1, length: length)
                _ = try? InferenceSession(model: model).append(tokens)
            }
        }
    case "gpt2":
        // vocab.json, a zero byte, merges.txt.
        let cut = bytes.firstIndex(of: 0) ?? bytes.count
        let vocab = file("vocab.json", UnsafeBufferPointer(rebasing: bytes[..<cut]))
        let merges = file("merges.txt", UnsafeBufferPointer(rebasing: bytes[min(cut + 1, bytes.count)...]))
        if let tokenizer = try? GPT2Files.load(vocab: vocab, merges: merges) { _ = tokenizer.encode("fuzz, the tokenizer's own text 🙃") }
    case "tokenizer-json":
        if let tokenizer = try? HuggingFaceFile.load(path: file("tokenizer.json", bytes)) { _ = tokenizer.encode("fuzz 🙃 text") }
    case "llama2c":
        if let model = try? Llama2cCheckpoint.load(path: file("model.bin", bytes)) { _ = try? model.forward(tokens: [0], batch: 1, length: 1) }
    case "llama2c-tokenizer":
        if let tokenizer = try? SentencePieceTokenizer(path: file("tokenizer.bin", bytes)) {
            _ = try? tokenizer.decode(tokenizer.encode("fuzz, the tokenizer's own text 🙃"))
        }
    case "gguf":
        if let gguf = try? GGUFFile(path: file("model.gguf", bytes)) {
            for tensor in gguf.tensors where tensor.elementCount <= 1 << 16 { _ = try? gguf.floats(tensor.name).count }
            _ = gguf.metadata["tokenizer.ggml.tokens"]?.strings?.count
            _ = try? GGUFCheckpoint.config(of: gguf)
            if let tokenizer = try? GGUFTokenizer.load(gguf) { _ = tokenizer.encodePrompt("fuzz <|im_start|> 2024 🙃") }
        }
    case "gguf-vocabulary":
        // A GGUF file's tokenizer alone (Gemma's scored SentencePiece pieces, llama2.c's layout,
        // byte-level BPE): its special pieces cut out, runs of spaces, bytes without pieces,
        // decoding back, and every id decoded one by one as a stream would.
        if let gguf = try? GGUFFile(path: file("tokenizer.gguf", bytes)), let tokenizer = try? GGUFTokenizer.load(gguf) {
            let ids = tokenizer.encodePrompt("<bos><start_of_turn>user\n  hello   world\n\n日本語 ü é 12<end_of_turn>\u{7F}\u{0}")
            for id in ids.prefix(64) { _ = try? tokenizer.pieceBytes(id, after: nil) }
            for id in Int32(0)..<Int32(min(tokenizer.vocabularySize, 512)) { _ = try? tokenizer.pieceBytes(id, after: id == 0 ? nil : id - 1) }
        }
    case "qwen-tokenizer-json":
        // A tokenizer.json under Qwen's pre-tokenizer (a Split regex, then ByteLevel without its
        // own regex), with its added tokens: contractions, numbers digit by digit, CJK, newlines.
        if let tokenizer = try? HuggingFaceFile.load(path: file("tokenizer.json", bytes)) {
            let ids = tokenizer.encode("<|im_start|>user\nI'm 12345 日本語, it's\r\n\n  fine!!<|im_end|>\n<think>\u{301}</think>")
            _ = try? tokenizer.decode(ids)
        }
    case "hf-config":
        _ = file("config.json", bytes)
        if let config = try? HuggingFaceCheckpoint.config(directory: scratch) { _ = ParameterLayout(config: config).totalCount }
    case "hf-index":
        _ = file("model.safetensors.index.json", bytes)
        _ = try? SafeTensorsShards(directory: scratch)
    case "chat-template":
        let messages = [ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello")]
        if let template = try? ChatTemplate(String(decoding: bytes, as: UTF8.self)) {
            _ = try? template.render(messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
        }
    case "json-schema":
        // A response_format schema (the first line) and an answer read against it (the rest):
        // compiling refuses or compiles, and reading never traps, whatever either holds.
        let cut = bytes.firstIndex(of: 0x0A) ?? bytes.count
        if let value = try? JSONValue(parsing: Data(bytes[..<cut])), let schema = try? JSONSchema(value) {
            var recognizer = JSONRecognizer(schema)
            _ = recognizer.read(bytes[min(cut + 1, bytes.count)...])
            _ = recognizer.isComplete
            _ = try? ToolCalls.constraint(for: [ToolFunction(name: "f", parameters: value)])
        }
    default:
        fatalError("LM_FUZZ_TARGET must be safetensors, npy, config, gpt2, tokenizer-json, qwen-tokenizer-json, llama2c, llama2c-tokenizer, gguf, gguf-vocabulary, hf-config, hf-index, chat-template or json-schema; got \(target)")
    }
    return 0
}
