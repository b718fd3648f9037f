/// A projection of a block that a LoRA adapter can adapt, named as `--lora-targets` and PEFT's
/// `target_modules` name it.
public enum LoRATarget: String, Codable, Sendable, CaseIterable, Comparable {
    case q, k, v, o, gate, up, down

    /// The module's name in Hugging Face models (PEFT's `target_modules`).
    public var moduleName: String {
        switch self {
        case .q: "q_proj"
        case .k: "k_proj"
        case .v: "v_proj"
        case .o: "o_proj"
        case .gate: "gate_proj"
        case .up: "up_proj"
        case .down: "down_proj"
        }
    }

    /// The module's path inside a Hugging Face decoder layer (`self_attn.q_proj`, `mlp.down_proj`).
    var huggingFacePath: String { (isAttention ? "self_attn." : "mlp.") + moduleName }

    /// Our state-dict name of the adapted weight inside layer `layer`.
    func weightName(layer: Int) -> String {
        let name = switch self {
        case .q: "attn.q_proj"
        case .k: "attn.k_proj"
        case .v: "attn.v_proj"
        case .o: "attn.output_proj"
        case .gate: "ffn.w1"
        case .up: "ffn.w3"
        case .down: "ffn.w2"
        }
        return "layers.\(layer).\(name).weight"
    }

    var isAttention: Bool { [.q, .k, .v, .o].contains(self) }

    /// The fused weight of a block this projection is part of.
    enum Group: CaseIterable { case qkv, output, gateUp, down }

    var group: Group {
        switch self {
        case .q, .k, .v: .qkv
        case .o: .output
        case .gate, .up: .gateUp
        case .down: .down
        }
    }

    /// Rows of the fused weight this projection owns, and its input width.
    func place(in config: ModelConfig) -> (rows: Range<Int>, inFeatures: Int) {
        let (q, kv, c, f) = (config.attentionWidth, config.kvDim, config.dModel, config.dFF)
        return switch self {
        case .q: (0..<q, c)
        case .k: (q..<(q + kv), c)
        case .v: ((q + kv)..<(q + 2 * kv), c)
        case .o: (0..<c, q)
        case .gate: (0..<f, c)
        case .up: (f..<(2 * f), c)
        case .down: (0..<c, f)
        }
    }

    /// The PEFT module name's target, for reading `target_modules`.
    static func named(module: String) -> LoRATarget? { allCases.first { $0.moduleName == module } }

    public static func < (a: LoRATarget, b: LoRATarget) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
