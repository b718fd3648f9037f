import Foundation
import Kernels
@testable import Model
import TestSupport
import Verification
import XCTest

final class Llama2cImportTests: XCTestCase {
    /// A grouped-query model whose Q8_0 groups (8) divide every tensor.
    static let config = ModelConfig(vocabSize: 40, contextLength: 12, dModel: 16, numLayers: 2, numHeads: 4,
                                    dFF: 24, ropeTheta: 10_000, numKVHeads: 2)

    /// llama2.c's export.py, transcribed: the tensors of `model` in each format's order.
    static func file(_ model: TransformerLM, version: Int, shared: Bool, groupSize: Int = 8) -> Data {
        let c = model.config
        func values(_ name: String) -> [Float] { Array(model.tensor(name)!) }
        func layers(_ suffix: String) -> [[Float]] { (0..<c.numLayers).map { values("layers.\($0).\(suffix)") } }
        var data = Data()
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        func floats(_ v: [Float]) { v.forEach { append($0.bitPattern) } }
        let fields = [c.dModel, c.dFF, c.numLayers, c.numHeads, c.numKVHeads, c.vocabSize, c.contextLength].map(Int32.init)
        let matrices = layers("attn.q_proj.weight") + layers("attn.k_proj.weight") + layers("attn.v_proj.weight")
            + layers("attn.output_proj.weight") + layers("ffn.w1.weight") + layers("ffn.w2.weight") + layers("ffn.w3.weight")
        let classifier = shared ? [] : [values("lm_head.weight")]
        if version == 0 {
            fields.enumerated().forEach { append($0.offset == 5 && !shared ? -$0.element : $0.element) }
            floats(values("token_embeddings.weight"))
            layers("ln1.weight").forEach(floats)
            (layers("attn.q_proj.weight") + layers("attn.k_proj.weight") + layers("attn.v_proj.weight") + layers("attn.output_proj.weight")).forEach(floats)
            layers("ln2.weight").forEach(floats)
            (layers("ffn.w1.weight") + layers("ffn.w2.weight") + layers("ffn.w3.weight")).forEach(floats)
            floats(values("ln_final.weight"))
            floats([Float](repeating: 0.5, count: 2 * c.contextLength * c.headDim / 2))  // the unused RoPE tables
            classifier.forEach(floats)
            return data
        }
        append(UInt32(0x616b_3432))
        append(Int32(version))
        fields.forEach { append($0) }
        data.append(shared ? 1 : 0)
        if version == 2 { append(Int32(groupSize)) }
        data.append(Data(count: 256 - data.count))
        layers("ln1.weight").forEach(floats)
        layers("ln2.weight").forEach(floats)
        floats(values("ln_final.weight"))
        let all = [values("token_embeddings.weight")] + matrices + classifier
        if version == 1 {
            all.forEach(floats)
        } else {
            for tensor in all {
                let (q, scales) = quantize(tensor, groupSize: groupSize)
                data.append(contentsOf: q.map { UInt8(bitPattern: $0) })
                floats(scales)
            }
        }
        return data
    }

    /// export.py's quantize_q80: per group, scale = max|w| / 127, q = round(w / scale).
    static func quantize(_ w: [Float], groupSize: Int) -> (q: [Int8], scales: [Float]) {
        var q: [Int8] = [], scales: [Float] = []
        for start in stride(from: 0, to: w.count, by: groupSize) {
            let group = w[start..<(start + groupSize)]
            let scale = group.map(abs).max()! / 127
            scales.append(scale)
            q += group.map { Int8(($0 / scale).rounded()) }
        }
        return (q, scales)
    }

    func write(_ data: Data) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("llama2c-\(UUID().uuidString).bin").path
        try data.write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Legacy and version 1, shared and own classifier: every weight comes back exactly, under
    /// our names, and a shared classifier becomes an lm_head equal to the embedding.
    func testFloatFormatsImportEveryWeightExactly() throws {
        for shared in [true, false] {
            let source = try TransformerLM(config: Self.config, seed: 21)
            if shared { _ = source.tensor("lm_head.weight")!.update(fromContentsOf: source.tensor("token_embeddings.weight")!) }
            for version in [0, 1] {
                let imported = try Llama2cCheckpoint.load(path: try write(Self.file(source, version: version, shared: shared)))
                XCTAssertEqual(imported.config, Self.config, "version \(version)")
                XCTAssertEqual(imported.parameters.array, source.parameters.array, "version \(version), shared \(shared)")
            }
        }
    }

    /// Version 2: int8 values times their group's scale, as runq.c dequantizes; norms exact.
    func testQ8FormatDequantizes() throws {
        let source = try TransformerLM(config: Self.config, seed: 22)
        let imported = try Llama2cCheckpoint.load(path: try write(Self.file(source, version: 2, shared: false)))
        for entry in source.layout.entries {
            let original = Array(source.tensor(entry.name)!), loaded = Array(imported.tensor(entry.name)!)
            if entry.role == .gain {
                XCTAssertEqual(loaded, original, entry.name)
            } else {
                let (q, scales) = Self.quantize(original, groupSize: 8)
                let expected = q.enumerated().map { Float($0.element) * scales[$0.offset / 8] }
                XCTAssertEqual(loaded, expected, entry.name)
                let worst = zip(loaded, original).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(worst, original.map(abs).max()! / 127, "\(entry.name): error beyond half a step")
            }
        }
    }

    /// Sizes that disagree with the header, impossible headers and unknown versions: refused,
    /// with the file named.
    func testDamagedFilesAreRefused() throws {
        let source = try TransformerLM(config: Self.config, seed: 23)
        let legacy = Self.file(source, version: 0, shared: true), v2 = Self.file(source, version: 2, shared: true)
        var badVersion = Self.file(source, version: 1, shared: true)
        badVersion[4] = 3
        var zeroHeads = legacy
        zeroHeads.replaceSubrange(12..<16, with: [0, 0, 0, 0])
        var oddGroups = v2
        oddGroups.replaceSubrange(37..<41, with: [7, 0, 0, 0])
        let cases: [(String, Data, String)] = [
            ("truncated", legacy.dropLast(4), "bytes, but a version-0 file"),
            ("one byte more", legacy + Data([0]), "bytes, but a version-0 file"),
            ("Q8 truncated", v2.dropLast(1), "version-2"),
            ("version 3", badVersion, "version 3 is not supported"),
            ("zero heads", zeroHeads, "n_heads is 0"),
            ("groups not dividing", oddGroups, "Q8_0 groups of 7"),
            ("tiny", Data([1, 2, 3]), "too short"),
        ]
        for (name, data, expected) in cases {
            let path = try write(data)
            XCTAssertThrowsError(try Llama2cCheckpoint.load(path: path), name) { error in
                XCTAssertTrue("\(error)".contains(path) && "\(error)".contains(expected), "\(name): \(error)")
            }
        }
    }

    /// The real pretrained stories260K (8 heads over 4 KV heads): its greedy continuation from
    /// BOS equals the Double reference model's on the imported weights, at 1 and 2 threads.
    func testStories260KGreedyContinuationEqualsTheReference() throws {
        let model = try Llama2cCheckpoint.load(path: Fixtures.requireSharedData("llama2c/stories260K.bin"))
        let c = model.config
        XCTAssertEqual([c.dModel, c.dFF, c.numLayers, c.numHeads, c.numKVHeads, c.vocabSize, c.contextLength], [64, 172, 5, 8, 4, 512, 512])
        XCTAssertEqual(Array(model.tensor("lm_head.weight")!), Array(model.tensor("token_embeddings.weight")!), "shared classifier")
        let steps = 24
        var reference: [Int32] = [1]
        for _ in 0..<steps {
            let logits = ReferenceModel.logits(model, tokens: reference, batch: 1, length: reference.count).suffix(c.vocabSize)
            reference.append(Int32(logits.indices.max { logits[$0] < logits[$1] }! - logits.startIndex))
        }
        let original = Threading.count
        defer { Threading.count = original }
        for threads in [1, 2] {
            Threading.count = threads
            var ours: [Int32] = [1]
            _ = try Generator(model: model).generate(prompt: [1], options: GenerationOptions(maxTokens: steps, temperature: 0)) {
                ours.append($0)
                return true
            }
            XCTAssertEqual(ours, reference, "\(threads) threads")
        }
        XCTAssertGreaterThan(Set(reference).count, 5, "a trained model writes varied text, not one id over and over")
    }
}
