import Foundation
import Kernels

/// One forward pass over a single sequence, stage by stage, following the model's data flow:
/// what `lm trace` prints and `lm attention` draws. Runs with the standard attention kernel so
/// that every layer's attention weights exist to be shown.
public struct ForwardTrace: Sendable {
    /// Shape and statistics of one intermediate tensor.
    public struct Stage: Sendable {
        public let name: String
        public let shape: [Int]
        public let mean: Double, rms: Double, min: Double, max: Double

        init(_ name: String, _ shape: [Int], _ values: UnsafeBufferPointer<Float>) {
            precondition(values.count == shape.reduce(1, *), "ForwardTrace: \(name) has \(values.count) values for shape \(shape)")
            self.name = name
            self.shape = shape
            var sum = 0.0, squares = 0.0, low = Double.infinity, high = -Double.infinity
            for value in values {
                let v = Double(value)
                sum += v
                squares += v * v
                low = Swift.min(low, v)
                high = Swift.max(high, v)
            }
            let count = Double(Swift.max(values.count, 1))
            mean = sum / count
            rms = (squares / count).squareRoot()
            min = low
            max = high
        }
    }

    public let tokens: [Int32]
    public let stages: [Stage]
    /// Attention weights per layer and head, each `[T, T]` row-major (query rows, key columns;
    /// rows sum to 1, zeros above the diagonal).
    public let attention: [[[Float]]]
    /// The distribution over the next token after the last position: softmax of its logits.
    public let nextTokenProbabilities: [Float]
    /// The last position's logits, `[vocab]` (a page recomputes the distribution at any temperature).
    public let nextTokenLogits: [Float]
}

extension TransformerLM {
    /// Runs `tokens` (one sequence, at most context_length) through the model and keeps every stage.
    public func trace(tokens: [Int32]) throws -> ForwardTrace {
        let run = try InspectedForward(self, tokens: tokens)
        let (t, h) = (tokens.count, config.numHeads)
        func stage(_ name: String, _ values: MatrixView) -> ForwardTrace.Stage {
            ForwardTrace.Stage(name, values.shape, UnsafeBufferPointer(values.elements))
        }
        var stages = [stage("token_embeddings", run.residual(0))]
        var attention: [[[Float]]] = []
        for index in 0..<config.numLayers {
            let layer = run.layer(index), prefix = "layers.\(index)."
            let qkv = config.architecture.qkNorm ? "attn.qkv (QK-norm and RoPE on q, k)" : "attn.qkv (RoPE on q, k)"
            stages += [stage(prefix + "ln1", layer.norm1), stage(prefix + qkv, layer.qkv),
                       stage(prefix + "attn.heads (before output_proj)", layer.context)]
            if let post = layer.postAttention { stages.append(stage(prefix + "post_attn_norm", post.normed)) }
            stages += [stage(prefix + "residual + attention", layer.afterAttention), stage(prefix + "ln2", layer.norm2),
                       stage(prefix + "ffn.\(config.architecture.activation.rawValue)(w1)·w3", layer.gated)]
            if let post = layer.postFeedForward { stages.append(stage(prefix + "post_ffn_norm", post.normed)) }
            stages.append(stage(prefix + "residual + ffn", layer.output))
            attention.append((0..<h).map { head in run.attention(layer: index, head: head).array })
        }
        let logits = run.logits
        stages += [stage("ln_final", run.finalNorm.output), stage("logits", logits)]
        let lastLogits = logits.row(t - 1).array
        var last = lastLogits
        let top = last.max() ?? 0
        var total: Float = 0
        for i in last.indices {
            last[i] = (last[i] - top).exponential
            total += last[i]
        }
        return ForwardTrace(tokens: tokens, stages: stages, attention: attention, nextTokenProbabilities: last.map { $0 / total },
                            nextTokenLogits: lastLogits)
    }
}

private extension Float {
    var exponential: Float { Float(Foundation.exp(Double(self))) }
}
