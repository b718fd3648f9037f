import Foundation
import Kernels
import Synchronization

/// Which attention kernel a model runs: one forced, or chosen by the rule below.
///
/// The rule (``kernel(config:batch:length:training:)``): the memory-efficient kernel
/// (`FlashAttention` in `Kernels`) from ``handTiledContext`` tokens on when it runs on its
/// hand-vectorised tiles (head sizes a multiple of 16 on an AVX2 CPU), where they beat the
/// standard kernel in the bench's `attention_long/` cases (below that the two are within noise of
/// each other, and the standard kernel keeps its place in training at 256 tokens); from
/// ``longContext`` tokens on when it runs on its GEMM tiles (below that the standard kernel's
/// backward reads P where the GEMM tiles recompute it; above it the `[B, H, T, T]` tensors leave
/// the caches); and whenever the standard kernel's probabilities would take more than a quarter
/// of the machine's memory (training keeps them for every layer, plus one layer of scratch;
/// inference one layer). The standard kernel otherwise. The measurements are the README's "Long
/// contexts".
public enum AttentionChoice: Sendable, Equatable, CustomStringConvertible {
    case automatic
    case forced(AttentionKernel)

    private static let processDefault = Mutex<AttentionChoice?>(nil)

    /// What new models start with: set by a program (the `lm` commands' `--attention`), else
    /// `LM_ATTENTION`, else automatic (an unreadable `LM_ATTENTION` counts as unset here; the
    /// commands refuse it with a message).
    public static var `default`: AttentionChoice {
        get { processDefault.withLock { $0 } ?? (try? fromEnvironment()) ?? .automatic }
        set { processDefault.withLock { $0 = newValue } }
    }

    /// Sequences this long or longer get the memory-efficient kernel even on its GEMM tiles.
    public static let longContext = 2048

    /// Sequences this long or longer get the memory-efficient kernel when it runs on its
    /// hand-vectorised tiles.
    public static let handTiledContext = 1024

    /// `LM_ATTENTION` (`standard`, `memory-efficient` or `automatic`), or automatic when unset.
    public static func fromEnvironment() throws -> AttentionChoice {
        guard let text = ProcessInfo.processInfo.environment["LM_ATTENTION"] else { return .automatic }
        guard let choice = AttentionChoice(text) else {
            throw ModelError("LM_ATTENTION must be standard, memory-efficient or automatic, got '\(text)'")
        }
        return choice
    }

    public init?(_ text: String) {
        if text == "automatic" { self = .automatic } else if let kernel = AttentionKernel(rawValue: text) { self = .forced(kernel) } else { return nil }
    }

    public var description: String {
        switch self {
        case .automatic: "automatic"
        case .forced(let kernel): kernel.rawValue
        }
    }

    /// The kernel for a pass over `[batch, length]` tokens.
    public func kernel(config: ModelConfig, batch: Int, length: Int, training: Bool) -> AttentionKernel {
        if case .forced(let kernel) = self { return kernel }
        // The memory-efficient kernel has no sliding window: windowed models keep the standard one.
        if config.architecture.slidingWindow != nil { return .standard }
        let from = FlashAttention.runsHandKernels(headDim: config.headDim) ? Self.handTiledContext : Self.longContext
        if length >= from { return .memoryEfficient }
        let layers = training ? config.numLayers + 1 : 1
        let bytes = Double(batch) * Double(config.numHeads) * Double(length) * Double(length) * Double(layers) * 4
        return bytes > Double(SizeLimits.physicalMemory) / 4 ? .memoryEfficient : .standard
    }
}
