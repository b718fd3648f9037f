import Foundation
import Kernels

/// The handout's initialisation: linear weights from a normal with σ² = 2 / (d_in + d_out)
/// truncated at ±3σ, embeddings from N(0, 1) truncated at ±3, RMSNorm gains 1, biases 0.
enum Initialization {
    static func fill(_ parameters: TensorBuffer, layout: ParameterLayout, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for entry in layout.entries {
            let target = parameters.slice(entry.offset, entry.count)
            switch entry.role {
            case .gain:
                target.update(repeating: 1)
            case .bias:
                target.update(repeating: 0)
            case .embedding:
                for i in target.indices { target[i] = Float(truncatedNormal(sigma: 1, using: &generator)) }
            case .matrix:
                let (dOut, dIn) = (entry.shape[0], entry.shape[1])
                let sigma = (2 / Double(dIn + dOut)).squareRoot()
                for i in target.indices { target[i] = Float(truncatedNormal(sigma: sigma, using: &generator)) }
            }
        }
    }

    /// N(0, σ²) conditioned on [−3σ, 3σ], by rejection (99.7% of draws are kept).
    static func truncatedNormal(sigma: Double, using generator: inout SeededGenerator) -> Double {
        while true {
            // Box–Muller; u1 in (0, 1] so the logarithm is finite.
            let u1 = 1 - Double.random(in: 0..<1, using: &generator)
            let u2 = Double.random(in: 0..<1, using: &generator)
            let z = (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
            if abs(z) <= 3 { return z * sigma }
        }
    }
}
