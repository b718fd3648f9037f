import Foundation
import TensorIO

extension GGUFExport {
    /// Writes `adapter` as llama.cpp's LoRA adapter file (what its `convert_lora_to_gguf.py`
    /// writes and `--lora` loads): `general.type = adapter`, `adapter.type = lora`,
    /// `adapter.lora.alpha`, the model's `general.architecture`, and per adapted weight
    /// `blk.N.attn_q.weight.lora_a` [rank, in] and `….lora_b` [out, rank] in Float32. B's q and k
    /// rows are written as they are: llama.cpp orders Llama's q/k rows as ours are.
    ///
    /// llama.cpp scales by `alpha / rank` and has no rank-stabilised scale: such an adapter is
    /// written with the alpha that gives the same scale.
    public static func writeAdapter(_ adapter: LoRAAdapter, to path: String, name: String? = nil) throws {
        let config = adapter.config, settings = adapter.settings
        guard ModelFamily.named(config.architecture.family) != nil else {
            throw ModelError("GGUF adapter export: architecture '\(config.architecture.family)' is not one llama.cpp runs")
        }
        var writer = GGUFWriter()
        writer.set("general.architecture", string: config.architecture.family)
        writer.set("general.type", string: "adapter")
        writer.set("general.name", string: name ?? "LoRA adapter")
        writer.set("general.alignment", u32: UInt32(GGUFWriter.alignment))
        writer.set("adapter.type", string: "lora")
        writer.set("adapter.lora.alpha", f32: settings.scale * Float(settings.rank))
        for layer in 0..<config.numLayers {
            for target in settings.targets {
                let weight = ggufName(target.weightName(layer: layer))
                for (matrix, suffix) in [("A", "lora_a"), ("B", "lora_b")] {
                    let entry = adapter.layout.required(LoRAAdapter.name(of: target, layer: layer, matrix: matrix))
                    let bytes = [UInt8](UnsafeRawBufferPointer(start: adapter.parameters.pointer + entry.offset, count: 4 * entry.count))
                    try writer.add(.init(name: weight + "." + suffix, shape: entry.shape, type: .f32, bytes: bytes))
                }
            }
        }
        do { try writer.write(to: path) } catch { throw ModelError("\(error)") }
    }
}
