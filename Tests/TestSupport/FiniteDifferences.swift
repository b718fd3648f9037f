/// Central finite differences in Double: ∂f/∂xᵢ ≈ (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h.
public func finiteDifferenceGradient(_ x: [Double], step: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var probe = x
    return x.indices.map { i in
        probe[i] = x[i] + step
        let above = f(probe)
        probe[i] = x[i] - step
        let below = f(probe)
        probe[i] = x[i]
        return (above - below) / (2 * step)
    }
}
