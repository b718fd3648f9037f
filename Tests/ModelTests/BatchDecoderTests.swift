import Kernels
@testable import Model
import TestSupport
import XCTest

/// Continuous batching: streams that share decode steps get the bits they get alone, and the
/// text of a plain cached session up to Float32 rounding.
final class BatchDecoderTests: XCTestCase {
    /// A model whose every 2-D weight is kept in `format`'s blocks (encoded by our quantizer).
    static func quantizedModel(_ format: QuantizedMatrix.Format, config: ModelConfig) throws -> (TransformerLM, [[UInt8]]) {
        let dense = try TransformerLM(config: config, seed: 11)
        var quantized: [String: QuantizedMatrix] = [:], storage: [[UInt8]] = []
        for entry in dense.layout.entries where entry.shape.count == 2 && entry.shape[1] % format.blockValues == 0 {
            let blocks = format.encode(dense.tensor(entry.name)!.baseAddress!, rows: entry.shape[0], columns: entry.shape[1])
            storage.append(blocks)
            quantized[entry.name] = storage.last!.withUnsafeBytes {
                QuantizedMatrix(format: format, rows: entry.shape[0], columns: entry.shape[1], blocks: $0.baseAddress!)
            }
        }
        return (try TransformerLM(config: config, parameters: dense.parameters, quantized: quantized, keeping: nil), storage)
    }

    static let config = ModelConfig(vocabSize: 97, contextLength: 48, dModel: 64, numLayers: 2, numHeads: 4,
                                    dFF: 96, ropeTheta: 10_000, numKVHeads: 2)

    /// Prompts of different lengths decoded together, the batch changing as streams join and
    /// leave; each stream's logits at every step equal (bit for bit) the same stream decoded
    /// alone in the same decoder, and its greedy ids equal a plain ``InferenceSession``'s.
    func check(_ model: TransformerLM, label: String) throws {
        let prompts = (0..<5).map { ModelFactory.tokens(3 + 4 * $0, vocab: Self.config.vocabSize, seed: UInt64(40 + $0)) }
        let steps = 9
        // Alone: one stream at a time through a decoder of 1 slot.
        let single = try BatchDecoder(model: model, slots: 1)
        var alone: [[[Float]]] = []
        for prompt in prompts {
            single.reset(slot: 0)
            var logits = [try single.prefill(slot: 0, tokens: prompt)], next = argmax(logits[0])
            for _ in 0..<steps {
                logits.append(Array(try single.step([(0, next)])))
                next = argmax(logits.last!)
            }
            alone.append(logits)
        }
        // Together: one stream joins per step while a slot is free (so the batch grows, then shrinks
        // as the first finish, and the last joins a slot another left), slots taken in a shuffled order.
        let decoder = try BatchDecoder(model: model, slots: 4)
        var slotOf: [Int: Int] = [:], done: [Int: [[Float]]] = [:], live: [Int: [[Float]]] = [:]
        var free = [2, 0, 3, 1], waiting = 0
        while done.count < prompts.count {
            if waiting < prompts.count, let slot = free.popLast() {
                slotOf[waiting] = slot
                decoder.reset(slot: slot)
                live[waiting] = [try decoder.prefill(slot: slot, tokens: prompts[waiting])]
                waiting += 1
            }
            let streams = live.keys.sorted(by: >)  // rows in an order unlike the slots'
            let entries = streams.map { (slot: slotOf[$0]!, token: argmax(live[$0]!.last!)) }
            let logits = try decoder.step(entries), vocab = Self.config.vocabSize
            for (row, stream) in streams.enumerated() {
                live[stream]!.append(Array(logits[(row * vocab)..<((row + 1) * vocab)]))
                if live[stream]!.count == steps + 1 {
                    done[stream] = live.removeValue(forKey: stream)
                    free.append(slotOf[stream]!)
                }
            }
        }
        for stream in prompts.indices {
            XCTAssertEqual(done[stream]!, alone[stream], "\(label): stream \(stream) in a batch = alone, bit for bit")
        }
        // Against the plain cached session: the same greedy ids, logits within rounding.
        for (stream, prompt) in prompts.enumerated() {
            let session = InferenceSession(model: model)
            var logits = try session.append(prompt), worst: Float = 0
            for step in 0...steps {
                let batched = alone[stream][step]
                worst = max(worst, zip(logits, batched).map { abs($0 - $1) }.max()!)
                XCTAssertEqual(argmax(logits), argmax(batched), "\(label): stream \(stream) step \(step) greedy id")
                if step < steps { logits = Array(try session.step(argmax(logits))) }
            }
            XCTAssertLessThan(worst, 1e-4, "\(label): stream \(stream) logits against InferenceSession")
        }
    }

    func testStreamsInABatchGetTheBitsTheyGetAlone() throws {
        try check(try TransformerLM(config: Self.config, seed: 3), label: "Float32")
        for format in [QuantizedMatrix.Format.q4_1, .q8_0, .q5_0] {
            let (model, storage) = try Self.quantizedModel(format, config: Self.config)
            try withExtendedLifetime(storage) { try check(model, label: "\(format)") }
        }
    }

    private func argmax(_ logits: [Float]) -> Int32 { Int32(logits.indices.max { logits[$0] < logits[$1] }!) }
    private func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 { argmax(Array(logits)) }
}
