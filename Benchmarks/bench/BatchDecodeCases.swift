import Kernels
import Model

/// Continuous batching's decode step (``BatchDecoder``, what `lm-serve` runs): `streams`
/// sequences advanced together, one forward per step, on the SmolLM2-shaped Q4_1 model of
/// ``QuantizedModelCases``. Tokens per second count every stream's tokens; the check is the
/// batch invariance (the first stream's logits equal, bit for bit, those of it decoded alone).
enum BatchDecodeCases {
    static func all(quick: Bool) -> [BenchCase] {
        let steps = quick ? 8 : 32
        let products = [(QuantizedMatrix.Format.q8_0, "lm_head", 49_152, 576), (.q4_1, "gate_up", 3_072, 576)].flatMap { format, name, rows, columns in
            [1, 8].map { product(format, name, rows: rows, columns: columns, batch: $0) }
        }
        return products + [1, 4, 8, 16].map { streams in step(streams: streams, steps: steps) }
    }

    /// One batch-invariant product (``BatchInvariantWeight``) at a SmolLM2 shape: `batch` rows
    /// against random blocks; bytes are the blocks read once.
    static func product(_ format: QuantizedMatrix.Format, _ name: String, rows: Int, columns: Int, batch: Int) -> BenchCase {
        let bytes = rows * columns / format.blockValues * format.blockBytes
        return BenchCase(name: "batch_product/\(format)/\(name)/b\(batch)", detail: "[\(batch), \(columns)] · [\(rows), \(columns)]ᵀ", bytes: bytes) {
            let blocks = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
            for b in 0..<(bytes / format.blockBytes) {
                let block = blocks.baseAddress! + b * format.blockBytes
                for i in 0..<format.blockBytes { block.storeBytes(of: UInt8(truncatingIfNeeded: b &* 31 &+ i &* 7), toByteOffset: i, as: UInt8.self) }
                block.storeBytes(of: Float16(0.01).bitPattern, as: UInt16.self)
                if format == .q4_1 { block.storeBytes(of: Float16(-0.05).bitPattern, toByteOffset: 2, as: UInt16.self) }
            }
            let matrix = BatchInvariantWeight(QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: UnsafeRawPointer(blocks.baseAddress!)))
            let x = TensorBuffer(batch * columns, seed: 72), y = TensorBuffer(batch * rows)
            let run = { matrix.multiply(x.matrix(rows: batch, columns: columns), into: y.matrix(rows: batch, columns: rows), accumulate: false) }
            run()
            let first = Array(y.array.prefix(rows))
            let single = TensorBuffer(rows)
            matrix.multiply(x.matrix(at: 0, rows: 1, columns: columns), into: single.matrix(rows: 1, columns: rows), accumulate: false)
            guard single.array == first else { throw BenchFailure(description: "batch_product: row 0 differs from alone") }
            return Prepared(run: run, check: "row 0 = alone, bit for bit")
        }
    }

    static func step(streams: Int, steps: Int) -> BenchCase {
        BenchCase(name: "batch_decode/smollm2-q4_1/streams\(streams)",
                  detail: "SmolLM2 shape, Q4_1 + Q8_0 head, \(streams) stream\(streams == 1 ? "" : "s") × \(steps) steps after 16 cached",
                  tokens: streams * steps) {
            let model = try QuantizedModelCases.model("smollm2-q4_1", eightBit: false)
            let decoder = try BatchDecoder(model: model, slots: streams, context: 16 + steps + 1)
            let prompts: [[Int32]] = (0..<streams).map { stream in
                (0..<16).map { (position: Int) -> Int32 in Int32(1 + (stream * 131 + position * 17) % 4000) }
            }
            func prefill() throws -> [Int32] {
                try prompts.indices.map { slot in
                    decoder.reset(slot: slot)
                    return try decoder.prefill(slot: slot, tokens: prompts[slot]).withUnsafeBufferPointer { GreedySampler().sample($0) }
                }
            }
            // Batch invariance, checked once: stream 0 in the crowd = stream 0 alone.
            var next = try prefill()
            let together = Array(try decoder.step(next.enumerated().map { ($0, $1) }).prefix(model.config.vocabSize))
            let single = try BatchDecoder(model: model, slots: 1, context: 17)
            _ = try single.prefill(slot: 0, tokens: prompts[0])
            let alone = Array(try single.step([(0, next[0])]))
            guard together == alone else { throw BenchFailure(description: "batch_decode: stream 0's logits in a batch of \(streams) differ from alone") }
            let first = next
            let run = {
                // The prompts stay cached: each run decodes the same steps again after them.
                for slot in 0..<streams { decoder.rewind(slot: slot, to: prompts[slot].count) }
                next = first
                let sampler = GreedySampler(), vocab = model.config.vocabSize
                for _ in 0..<steps {
                    let logits = try! decoder.step(next.enumerated().map { ($0, $1) })
                    next = (0..<streams).map { sampler.sample(UnsafeBufferPointer(rebasing: logits[($0 * vocab)..<(($0 + 1) * vocab)])) }
                }
            }
            run()
            return Prepared(run: run, check: "stream 0 in a batch = alone, bit for bit")
        }
    }
}
