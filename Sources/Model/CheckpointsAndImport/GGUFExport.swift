import Foundation
import Kernels
import TensorIO
import Tokenizer

/// Writes a model as a GGUF file of its family's llama.cpp architecture (`llama`, `qwen2`,
/// `qwen3`, `gemma3`): the hyperparameters as `<architecture>.*` keys, the weights under
/// llama.cpp's names (Float32, or block-quantized), and a byte-level BPE tokenizer as a `gpt2`
/// vocabulary (`tokenizer.ggml.*`, with its pre-tokenizer, BOS/EOS and chat template), so that
/// llama.cpp runs a model trained or quantized here and ``GGUFCheckpoint`` reads it back.
///
/// q and k are written as they are: Llama's RoPE rotates interleaved pairs, as llama.cpp's does
/// for that architecture (its converter permutes Hugging Face's rows into the same order); the
/// other families rotate halves, as llama.cpp does for them. Norm gains are the effective ones
/// (Gemma's `1 + w`), as llama.cpp's converter writes them.
public enum GGUFExport {
    /// How the matrices are stored. Norm weights and RoPE factors stay Float32.
    public enum Storage: Equatable, Sendable {
        case float32
        /// Every matrix in `format`, except the head (the embedding when tied), which gets Q8_0
        /// when `format` has fewer bits: llama.cpp's own rule (it gives the head more bits, Q6_K,
        /// falling back to Q8_0 for rows that are not multiples of 256; K-quants are not written here).
        case quantized(QuantizedMatrix.Format)
    }

    /// `general.file_type` (llama.cpp's `llama_ftype`) for each storage.
    static func fileType(_ storage: Storage) -> UInt32 {
        switch storage {
        case .float32: 0
        case .quantized(let format):
            switch format {
            case .q4_0: 2
            case .q4_1: 3
            case .q8_0: 7
            case .q5_0: 8
            case .q5_1: 9
            case .q4_K, .q5_K, .q6_K: preconditionFailure("unreachable: K-quants are not written")
            }
        }
    }

    /// llama.cpp's name for each of ours (the inverse of ``GGUFCheckpoint``'s mapping).
    static func ggufName(_ name: String) -> String {
        let whole = ["token_embeddings.weight": "token_embd.weight", "ln_final.weight": "output_norm.weight", "lm_head.weight": "output.weight"]
        if let mapped = whole[name] { return mapped }
        let parts = name.split(separator: ".", maxSplits: 2)
        precondition(parts.count == 3 && parts[0] == "layers", "GGUFExport: no GGUF name for '\(name)'")
        guard let mapped = layerNames[String(parts[2])] else { preconditionFailure("GGUFExport: no GGUF name for '\(name)'") }
        return "blk.\(parts[1]).\(mapped)"
    }

    /// Ours → llama.cpp's per-layer names.
    static let layerNames = Dictionary(uniqueKeysWithValues: GGUFCheckpoint.layerNames.map { ($1, $0) })

    /// The `<architecture>.*` keys of `config`; what llama.cpp cannot read back as we run it is refused.
    static func writeHyperparameters(_ config: ModelConfig, into writer: inout GGUFWriter) throws {
        let architecture = config.architecture, name = architecture.family
        guard ModelFamily.named(name) != nil else { throw ModelError("GGUF export: architecture '\(name)' is not one llama.cpp runs") }
        writer.set("general.architecture", string: name)
        func key(_ suffix: String) -> String { name + "." + suffix }
        writer.set(key("vocab_size"), u32: UInt32(config.vocabSize))
        writer.set(key("context_length"), u32: UInt32(config.contextLength))
        writer.set(key("embedding_length"), u32: UInt32(config.dModel))
        writer.set(key("block_count"), u32: UInt32(config.numLayers))
        writer.set(key("feed_forward_length"), u32: UInt32(config.dFF))
        writer.set(key("attention.head_count"), u32: UInt32(config.numHeads))
        writer.set(key("attention.head_count_kv"), u32: UInt32(config.numKVHeads))
        writer.set(key("rope.dimension_count"), u32: UInt32(config.headDim))
        writer.set(key("rope.freq_base"), f32: Float(config.ropeTheta))
        writer.set(key("attention.layer_norm_rms_epsilon"), f32: config.normEps)
        if architecture.headDim != nil {
            writer.set(key("attention.key_length"), u32: UInt32(config.headDim))
            writer.set(key("attention.value_length"), u32: UInt32(config.headDim))
        }
        guard name == "gemma3" else { return }
        if let window = architecture.slidingWindow {
            // llama.cpp slides five layers of every six.
            guard architecture.slidingLayers == (0..<config.numLayers).map({ $0 % 6 < 5 }) else {
                throw ModelError("GGUF export: llama.cpp's gemma3 slides five layers of every six; this model's sliding layers differ")
            }
            writer.set(key("attention.sliding_window"), u32: UInt32(window))
        }
        if let local = architecture.localRopeTheta, local != 10_000 { writer.set(key("rope.freq_base_swa"), f32: Float(local)) }
        if let scale = architecture.globalRopeScale {
            writer.set(key("rope.scaling.type"), string: "linear")
            writer.set(key("rope.scaling.factor"), f32: Float(scale))
        }
        if let cap = architecture.finalLogitSoftcap { writer.set(key("final_logit_softcapping"), f32: cap) }
    }

    /// Writes `pretrained` (its model must be dense: Float32 weights) to `path`, complete or not
    /// at all. A head equal to the embedding is left out (llama.cpp ties it). The tokenizer must
    /// be a byte-level BPE one (``/Tokenizer/Tokenizer``), or absent (then the file has no
    /// vocabulary and llama.cpp cannot run it).
    public static func write(_ pretrained: PretrainedModel, storage: Storage, to path: String, name: String? = nil) throws {
        let model = pretrained.model
        try model.requireDense(for: "exporting to GGUF")
        if case .quantized(let format) = storage, !format.isWritable {
            throw ModelError("GGUF export writes Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 blocks; \(format) is read here, not written")
        }
        let config = model.config
        var writer = GGUFWriter()
        try writeHyperparameters(config, into: &writer)
        writer.set("general.name", string: name ?? ((pretrained.path as NSString).lastPathComponent as String))
        writer.set("general.file_type", u32: fileType(storage))
        writer.set("general.alignment", u32: UInt32(GGUFWriter.alignment))
        try writeTokenizer(pretrained, into: &writer)

        let tied = config.architecture.tiedEmbeddings || isHeadTied(model)
        for entry in model.layout.entries where !(tied && entry.name == "lm_head.weight") {
            let values = UnsafePointer(model.parameters.pointer + entry.offset)
            let isHead = entry.name == (tied ? "token_embeddings.weight" : "lm_head.weight")
            var type = GGMLType.f32
            if entry.shape.count == 2, case .quantized(let format) = storage, entry.shape[1] % format.blockValues == 0 {
                let chosen: QuantizedMatrix.Format = isHead && format != .q8_0 ? .q8_0 : format
                type = GGMLType(rawValue: UInt32(chosen.rawValue))!
                try writer.add(.init(name: ggufName(entry.name), shape: entry.shape, type: type,
                                     bytes: chosen.encode(values, rows: entry.shape[0], columns: entry.shape[1])))
                continue
            }
            let bytes = [UInt8](UnsafeRawBufferPointer(start: values, count: 4 * entry.count))
            try writer.add(.init(name: ggufName(entry.name), shape: entry.shape, type: type, bytes: bytes))
        }
        if let factors = config.ropeFrequencyFactors {
            let bytes = factors.flatMap { value in withUnsafeBytes(of: Float(value).bitPattern.littleEndian) { Array($0) } }
            try writer.add(.init(name: GGUFCheckpoint.ropeFactorsTensor, shape: [factors.count], type: .f32, bytes: bytes))
        }
        do { try writer.write(to: path) } catch { throw ModelError("\(error)") }
    }

    /// Whether the head holds exactly the embedding's values (a tied model, or one imported from
    /// a file that tied them).
    static func isHeadTied(_ model: TransformerLM) -> Bool {
        guard let head = model.tensor("lm_head.weight"), let embedding = model.tensor("token_embeddings.weight"), head.count == embedding.count else {
            return false
        }
        return memcmp(head.baseAddress!, embedding.baseAddress!, 4 * head.count) == 0
    }

    /// The `tokenizer.ggml.*` keys of a byte-level BPE tokenizer (`gpt2`) or a scored
    /// SentencePiece vocabulary (`llama`, Gemma's), as ``/Tokenizer/GGUFTokenizer`` and llama.cpp read them.
    static func writeTokenizer(_ pretrained: PretrainedModel, into writer: inout GGUFWriter) throws {
        guard let wrapped = pretrained.tokenizer else { return }
        if let pieces = wrapped as? ScoredPieceTokenizer {
            writeScoredPieces(pieces, eosText: pretrained.eosText, into: &writer)
            if let template = pretrained.chatTemplate { writer.set("tokenizer.chat_template", string: template.source) }
            return
        }
        guard let tokenizer = wrapped as? Tokenizer else {
            throw ModelError("\(pretrained.path): GGUF export writes byte-level BPE vocabularies (gpt2) and scored SentencePiece ones (llama); this model's tokenizer is \(type(of: wrapped))")
        }
        let specials = Dictionary(tokenizer.specialTokens.map { ($0.id, $0.text) }, uniquingKeysWith: { first, _ in first })
        var texts: [String] = [], types: [Int32] = []
        texts.reserveCapacity(tokenizer.vocabularySize)
        for (id, bytes) in tokenizer.vocabulary.enumerated() {
            if let text = specials[Int32(id)] {
                texts.append(text)
                types.append(3)  // control: matched whole in text
            } else {
                texts.append(ByteLevel.encode(bytes))
                types.append(1)  // normal
            }
        }
        let merges = tokenizer.merges.map { texts[Int($0.left)] + " " + texts[Int($0.right)] }
        writer.set("tokenizer.ggml.model", string: "gpt2")
        writer.set("tokenizer.ggml.pre", string: tokenizer.rules.preTokenization.rawValue)
        writer.set("tokenizer.ggml.tokens", strings: texts)
        writer.set("tokenizer.ggml.token_type", int32s: types)
        writer.set("tokenizer.ggml.merges", strings: merges)
        let rules = tokenizer.rules
        if let bos = rules.promptPrefix.first ?? tokenizer.specialTokenID(pretrained.bosText) {
            writer.set("tokenizer.ggml.bos_token_id", u32: UInt32(bos))
        }
        writer.set("tokenizer.ggml.add_bos_token", bool: !rules.promptPrefix.isEmpty)
        if let eos = tokenizer.specialTokenID(pretrained.eosText) ?? tokenizer.stopTokens.sorted().first {
            writer.set("tokenizer.ggml.eos_token_id", u32: UInt32(eos))
        }
        if let template = pretrained.chatTemplate { writer.set("tokenizer.chat_template", string: template.source) }
    }

    /// The `tokenizer.ggml.*` keys of a scored SentencePiece vocabulary (`tokenizer.ggml.model =
    /// llama`): pieces, scores, types, BOS, EOS (the piece `eosText` names, else the lowest stop
    /// id), the unknown piece, whether BOS and a space go first. What a model directory's
    /// `tokenizer.gguf` holds too.
    public static func writeScoredPieces(_ pieces: ScoredPieceTokenizer, eosText: String, into writer: inout GGUFWriter) {
        writer.set("tokenizer.ggml.model", string: "llama")
        writer.set("tokenizer.ggml.pre", string: "default")
        writer.set("tokenizer.ggml.tokens", strings: pieces.pieces)
        writer.set("tokenizer.ggml.scores", f32s: pieces.scores)
        writer.set("tokenizer.ggml.token_type", int32s: pieces.kinds.map { Int32($0.rawValue) })
        if let bos = pieces.bosID { writer.set("tokenizer.ggml.bos_token_id", u32: UInt32(bos)) }
        if let eos = pieces.id(of: eosText).flatMap({ pieces.stopTokens.contains($0) ? $0 : nil }) ?? pieces.stopTokens.min() {
            writer.set("tokenizer.ggml.eos_token_id", u32: UInt32(eos))
        }
        if let unknown = pieces.kinds.firstIndex(of: .unknown) { writer.set("tokenizer.ggml.unknown_token_id", u32: UInt32(unknown)) }
        writer.set("tokenizer.ggml.add_bos_token", bool: !pieces.promptPrefix.isEmpty)
        writer.set("tokenizer.ggml.add_space_prefix", bool: pieces.addsSpacePrefix)
    }
}
