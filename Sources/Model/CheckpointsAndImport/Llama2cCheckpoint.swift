import Foundation
import Kernels
import TensorIO

/// Reads the model files of karpathy/llama2.c (`run.c`, `runq.c`) into a ``TransformerLM``.
///
/// Three layouts, all little-endian:
/// - **legacy** (`export.py --version 0`, the published stories*.bin): seven int32 fields
///   (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len), then float32 tensors:
///   embedding, every layer's attention norm, wq, wk, wv, wo, FFN norm, w1, w2, w3, the final
///   norm, two unused RoPE tables `[seq_len, head_size/2]`, and the classifier only when
///   vocab_size is negative (otherwise it is the embedding).
/// - **version 1**: a 256-byte header (magic "ak42" = 0x616b3432, version, the seven fields, a
///   shared-classifier byte), then the norms, the embedding, wq… w3 and the optional classifier.
/// - **version 2** (Q8_0): the same header plus the quantization group size; the norms in
///   float32, then every matrix (embedding, wq… w3 per layer, optional classifier) as int8
///   values followed by one float32 scale per group: value = int8 × scale. Dequantized here.
///
/// llama2.c's model is ours: pre-norm RMSNorm with ε = 1e-5, interleaved-pair RoPE with
/// θ = 10,000, SwiGLU `w2(silu(w1 x) ⊙ w3 x)`, grouped-query heads; its matrices are `[out, in]`
/// like ours, so every tensor maps by name without reordering.
public enum Llama2cCheckpoint {
    /// "ak42" read as a little-endian uint32: the first field of the versioned formats.
    static let magic: UInt32 = 0x616b_3432
    static let versionedHeaderBytes = 256
    /// The longest context an imported header may claim (llama2.c's largest models use 4,096).
    public static let maxContextLength = 1 << 20

    /// What the file's header says, before any weight is read.
    public struct Header: Sendable, Equatable {
        /// 0 for the legacy layout, else 1 (float32) or 2 (Q8_0).
        public var version: Int
        public var dim, hiddenDim, layers, heads, kvHeads, vocabSize, contextLength: Int
        /// Whether the classifier is the embedding table (no separate tensor in the file).
        public var sharedClassifier: Bool
        /// Q8_0 group size (version 2), else 0.
        public var groupSize: Int

        public var headSize: Int { dim / heads }
        public var kvDim: Int { kvHeads * headSize }

        /// The model configuration this file describes.
        public var config: ModelConfig {
            ModelConfig(vocabSize: vocabSize, contextLength: contextLength, dModel: dim, numLayers: layers, numHeads: heads,
                        dFF: hiddenDim, ropeTheta: 10_000, numKVHeads: kvHeads, normEps: 1e-5)
        }
    }

    /// Reads `path` and returns the model, its weights dequantized to float32 where needed.
    /// Throws a message naming the file for an unknown version, impossible header fields, a
    /// size that differs from what the header implies, or non-finite weights.
    public static func load(path: String) throws -> TransformerLM {
        let data: Data
        do { data = try InputFile.read(path, mapped: true) } catch { throw ModelError("\(error)") }
        return try data.withUnsafeBytes { bytes in
            let header = try readHeader(bytes, path: path)
            let config = header.config
            do { try config.validate() } catch let error as ModelError { throw ModelError("\(path): \(error.message)") }
            guard header.headSize % 2 == 0 else { throw ModelError("\(path): head size \(header.headSize) is odd; RoPE rotates pairs") }
            let expected = try expectedSize(header, path: path)
            guard bytes.count == expected else {
                throw ModelError("\(path): \(bytes.count) bytes, but a version-\(header.version) file with this header (\(describe(header))) has \(expected) bytes; the file is truncated or not a llama2.c checkpoint")
            }
            let model = try TransformerLM(config: config, parameters: TensorBuffer(count: ParameterLayout(config: config).totalCount))
            var reader = TensorReader(bytes: bytes, offset: header.version == 0 ? 28 : versionedHeaderBytes, groupSize: header.groupSize)
            copyWeights(header, reader: &reader, into: model.parameters, layout: model.layout)
            precondition(reader.offset == bytes.count, "Llama2cCheckpoint: read \(reader.offset) of \(bytes.count) bytes")
            for entry in model.layout.entries {
                try ModelError.requireFinite(model.parameters.slice(entry.offset, entry.count), tensor: entry.name, path: path)
            }
            return model
        }
    }

    static func describe(_ h: Header) -> String {
        "dim \(h.dim), hidden_dim \(h.hiddenDim), n_layers \(h.layers), n_heads \(h.heads), n_kv_heads \(h.kvHeads), vocab_size \(h.vocabSize), seq_len \(h.contextLength)\(h.sharedClassifier ? ", shared classifier" : ", own classifier")\(h.version == 2 ? ", group size \(h.groupSize)" : "")"
    }

    /// Parses and sanity-checks the header (positive fields, heads dividing dim and each other).
    public static func readHeader(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Header {
        func int32(_ offset: Int) -> Int { Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self))) }
        guard bytes.count >= 28 else { throw ModelError("\(path): \(bytes.count) bytes, too short for a llama2.c header (28 bytes at least)") }
        var header: Header
        if UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)) == magic {
            guard bytes.count >= versionedHeaderBytes else {
                throw ModelError("\(path): \(bytes.count) bytes, too short for a versioned llama2.c header (\(versionedHeaderBytes) bytes)")
            }
            let version = int32(4)
            guard version == 1 || version == 2 else {
                throw ModelError("\(path): llama2.c format version \(version) is not supported (1: float32, 2: Q8_0)")
            }
            header = Header(version: version, dim: int32(8), hiddenDim: int32(12), layers: int32(16), heads: int32(20), kvHeads: int32(24),
                            vocabSize: int32(28), contextLength: int32(32), sharedClassifier: bytes[36] != 0,
                            groupSize: version == 2 ? int32(37) : 0)
            if version == 2 && header.groupSize <= 0 { throw ModelError("\(path): Q8_0 group size \(header.groupSize) must be positive") }
        } else {
            let vocab = int32(20)
            header = Header(version: 0, dim: int32(0), hiddenDim: int32(4), layers: int32(8), heads: int32(12), kvHeads: int32(16),
                            vocabSize: abs(vocab), contextLength: int32(24), sharedClassifier: vocab > 0, groupSize: 0)
        }
        let fields = [("dim", header.dim), ("hidden_dim", header.hiddenDim), ("n_layers", header.layers), ("n_heads", header.heads),
                      ("n_kv_heads", header.kvHeads), ("vocab_size", header.vocabSize), ("seq_len", header.contextLength)]
        if let bad = fields.first(where: { $0.1 <= 0 }) {
            throw ModelError("\(path): header field \(bad.0) is \(bad.1); not a llama2.c checkpoint, or a damaged one (\(describe(header)))")
        }
        // Versioned files do not store RoPE tables, so nothing in their size bounds seq_len;
        // the position tables and caches it sizes must stay sane.
        guard header.contextLength <= maxContextLength else {
            throw ModelError("\(path): seq_len \(header.contextLength) is above \(maxContextLength) positions; not a plausible llama2.c model")
        }
        guard header.dim % header.heads == 0, header.heads % header.kvHeads == 0 else {
            throw ModelError("\(path): n_heads \(header.heads) must divide dim \(header.dim), and n_kv_heads \(header.kvHeads) must divide n_heads")
        }
        return header
    }

    /// Every tensor in file order: its name in our layout (nil for the skipped RoPE tables),
    /// its element count, and whether version 2 stores it quantized.
    static func fileTensors(_ h: Header) -> [(name: String?, count: Int, quantized: Bool)] {
        let (c, f, v, kv, l) = (h.dim, h.hiddenDim, h.vocabSize, h.kvDim, h.layers)
        func perLayer(_ suffix: String, _ count: Int, quantized: Bool = true) -> [(name: String?, count: Int, quantized: Bool)] {
            (0..<l).map { ("layers.\($0).\(suffix)", count, quantized) }
        }
        let attentionNorms = perLayer("ln1.weight", c, quantized: false), ffnNorms = perLayer("ln2.weight", c, quantized: false)
        let finalNorm: [(name: String?, count: Int, quantized: Bool)] = [("ln_final.weight", c, false)]
        let embedding: [(name: String?, count: Int, quantized: Bool)] = [("token_embeddings.weight", v * c, true)]
        let matrices = perLayer("attn.q_proj.weight", c * c) + perLayer("attn.k_proj.weight", kv * c) + perLayer("attn.v_proj.weight", kv * c)
            + perLayer("attn.output_proj.weight", c * c)
        let feedForward = perLayer("ffn.w1.weight", f * c) + perLayer("ffn.w2.weight", c * f) + perLayer("ffn.w3.weight", f * c)
        let classifier: [(name: String?, count: Int, quantized: Bool)] = h.sharedClassifier ? [] : [("lm_head.weight", v * c, true)]
        if h.version == 0 {
            let ropeTables: [(name: String?, count: Int, quantized: Bool)] = [(nil, h.contextLength * h.headSize / 2, false),
                                                                              (nil, h.contextLength * h.headSize / 2, false)]
            return embedding + attentionNorms + matrices + ffnNorms + feedForward + finalNorm + ropeTables + classifier
        }
        return attentionNorms + ffnNorms + finalNorm + embedding + matrices + feedForward + classifier
    }

    /// The file size the header implies, overflow-checked.
    static func expectedSize(_ h: Header, path: String) throws -> Int {
        var total = h.version == 0 ? 28 : versionedHeaderBytes
        for tensor in fileTensors(h) {
            let bytes: Int?
            if h.version == 2 && tensor.quantized {
                guard tensor.count % h.groupSize == 0 else {
                    throw ModelError("\(path): a tensor of \(tensor.count) values is not a whole number of Q8_0 groups of \(h.groupSize)")
                }
                bytes = SizeLimits.sum([tensor.count, SizeLimits.product([tensor.count / h.groupSize, 4])])
            } else {
                bytes = SizeLimits.product([tensor.count, 4])
            }
            guard let bytes, let sum = SizeLimits.sum([total, bytes]) else { throw ModelError("\(path): the header's sizes overflow (\(describe(h)))") }
            total = sum
        }
        return total
    }

    static func copyWeights(_ h: Header, reader: inout TensorReader, into parameters: TensorBuffer, layout: ParameterLayout) {
        for tensor in fileTensors(h) {
            guard let name = tensor.name else {
                reader.skip(floats: tensor.count)
                continue
            }
            let entry = layout.required(name)
            precondition(entry.count == tensor.count, "Llama2cCheckpoint: \(name) has \(entry.count) values in our layout, \(tensor.count) in the file")
            let destination = UnsafeMutableBufferPointer(start: parameters.pointer + entry.offset, count: entry.count)
            if h.version == 2 && tensor.quantized { reader.dequantize(into: destination) } else { reader.floats(into: destination) }
        }
        if h.sharedClassifier {
            let embedding = layout.required("token_embeddings.weight"), head = layout.required("lm_head.weight")
            (parameters.pointer + head.offset).update(from: parameters.pointer + embedding.offset, count: head.count)
        }
    }

    /// Sequential reads from the file's bytes.
    struct TensorReader {
        let bytes: UnsafeRawBufferPointer
        var offset: Int
        let groupSize: Int

        mutating func skip(floats count: Int) { offset += 4 * count }

        mutating func floats(into destination: UnsafeMutableBufferPointer<Float>) {
            for i in 0..<destination.count {
                destination[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4 * i, as: UInt32.self)))
            }
            offset += 4 * destination.count
        }

        /// int8 values, then one float32 scale per group.
        mutating func dequantize(into destination: UnsafeMutableBufferPointer<Float>) {
            let scales = offset + destination.count
            for group in 0..<(destination.count / groupSize) {
                let scale = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: scales + 4 * group, as: UInt32.self)))
                for i in (group * groupSize)..<((group + 1) * groupSize) {
                    destination[i] = Float(Int8(bitPattern: bytes[offset + i])) * scale
                }
            }
            offset = scales + 4 * (destination.count / groupSize)
        }
    }
}
