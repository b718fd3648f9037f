import Kernels

/// Direct logit attribution: one position's logit for one token, split into what each part of
/// the model wrote into the residual stream (the embedding, every attention head, every
/// feed-forward block), read through the head.
///
/// The stream leaving the last block is the sum of those parts, and the logit is
/// `W_head[token] · (g ⊙ x · s)` with `g` the final norm's gain and `s` its 1/rms at the position.
/// Holding `s` at the value the forward computed (the approximation: a part's own effect on
/// the norm's scale is not counted) makes the logit linear in the parts, so they add up to it.
/// A head's part is its slice of the attention output through its slice of `output_proj`;
/// where the family norms a branch before it joins the stream (Gemma) that norm's scale is
/// held too. The logit is before the final softcap where the family has one.
public struct DirectLogitAttribution: Sendable {
    public let position: Int
    public let token: Int32
    /// The logit the parts add up to, computed in Double from the stream: `W_head[token] · (g ⊙ x · s)`.
    public let logit: Double
    /// The final norm's 1/rms at the position, held fixed.
    public let finalScale: Double
    public let embedding: Double
    /// [layer][head]
    public let heads: [[Double]]
    /// [layer]
    public let feedForward: [Double]

    /// Each layer's attention: the sum of its heads.
    public var attention: [Double] { heads.map { $0.reduce(0, +) } }
    /// The parts' sum (equal to ``logit`` up to rounding).
    public var total: Double { embedding + attention.reduce(0, +) + feedForward.reduce(0, +) }

    /// The attribution of `token`'s logit at `position` (default: the last) in `run`.
    public init(_ run: InspectedForward, token: Int32, position: Int? = nil) throws {
        let model = run.model, config = model.config
        let position = position ?? run.length - 1
        guard (0..<run.length).contains(position) else { throw ModelError("attribution: position \(position) is outside the prompt's 0..<\(run.length)") }
        guard (0..<config.vocabSize).contains(Int(token)) else { throw ModelError("attribution: token \(token) is outside the vocabulary of \(config.vocabSize)") }
        let (c, h, d) = (config.dModel, config.numHeads, config.headDim)
        // The direction every part is read along: u = W_head[token] ⊙ g · s.
        let scale = Double(run.finalNorm.rstd[position])
        let headRow = try Self.row(Int(token), of: model.inference.head)
        let gain = model.weights.finalNorm
        let direction = (0..<c).map { Double(headRow[$0]) * Double(gain[$0]) * scale }
        func read(_ vector: UnsafeMutableBufferPointer<Float>, times factor: (Int) -> Double = { _ in 1 }) -> Double {
            var sum = 0.0
            for i in 0..<c { sum += direction[i] * Double(vector[i]) * factor(i) }
            return sum
        }
        let masked = TensorBuffer(count: h * config.attentionWidth), perHead = TensorBuffer(count: h * c), branch = TensorBuffer(count: c)
        var heads: [[Double]] = [], feedForward: [Double] = []
        for index in 0..<config.numLayers {
            let a = run.layer(index), weights = model.inference.layers[index]
            // Head k's context alone (the others' columns zero) through output_proj: its part of the branch.
            let contexts = masked.matrix(at: 0, rows: h, columns: config.attentionWidth)
            contexts.fill(0)
            for k in 0..<h { contexts.row(k).head(k, size: d).copy(from: a.context.row(position).head(k, size: d)) }
            let outputs = perHead.matrix(at: 0, rows: h, columns: c)
            Linear.forward(x: contexts, weight: weights.output, y: outputs)
            let attentionNorm = Self.postNorm(a.postAttention, weights.extras.postAttentionNorm, position)
            heads.append((0..<h).map { k in read(outputs.row(k).elements, times: attentionNorm) })
            // The feed-forward branch as it joined the stream.
            if let post = a.postFeedForward {
                feedForward.append(read(post.normed.row(position).elements))
            } else {
                let out = branch.matrix(at: 0, rows: 1, columns: c)
                Linear.forward(x: a.gated.row(position), weight: weights.down, y: out)
                feedForward.append(read(out.elements))
            }
        }
        self.position = position
        self.token = token
        finalScale = scale
        embedding = read(run.residual(0).row(position).elements)
        self.heads = heads
        self.feedForward = feedForward
        logit = read(run.residual(config.numLayers).row(position).elements)
    }

    /// A post-norm's fixed factor per column at `position` (gain · 1/rms), or 1 without one.
    static func postNorm(_ memory: PostNormMemory?, _ gain: UnsafeMutableBufferPointer<Float>?, _ position: Int) -> (Int) -> Double {
        guard let memory, let gain else { return { _ in 1 } }
        let scale = Double(memory.rstd[position])
        return { Double(gain[$0]) * scale }
    }

    /// Row `index` of a weight as Float32 values, decoded when it is kept in blocks.
    static func row(_ index: Int, of weight: any LinearWeight) throws -> [Float] {
        if let dense = weight.dense { return dense.row(index).array }
        if let blocks = weight as? QuantizedMatrix {
            return [Float](unsafeUninitializedCapacity: blocks.columns) { buffer, count in
                blocks.decodeRow(index, into: buffer.baseAddress!)
                count = blocks.columns
            }
        }
        throw ModelError("attribution: the head's weights are in a form whose rows cannot be read")
    }
}
