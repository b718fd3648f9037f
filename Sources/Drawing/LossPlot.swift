import Foundation

/// Training and validation loss against step as a self-contained SVG (no scripts, no external
/// fonts): axes with ticks and labels, a legend, and the two curves.
public enum LossPlot {
    /// train, validation: (step, loss in nats per token), in step order.
    public static func svg(train: [(step: Int, loss: Double)], validation: [(step: Int, loss: Double)], title: String) -> String {
        let (width, height) = (720.0, 420.0)
        let (left, right, top, bottom) = (70.0, 20.0, 40.0, 50.0)
        let points = (train + validation).filter { $0.loss.isFinite }
        let maxStep = max(1, points.map(\.step).max() ?? 1)
        var low = points.map(\.loss).min() ?? 0, high = points.map(\.loss).max() ?? 1
        if high - low < 1e-9 { low -= 0.5; high += 0.5 }
        let pad = (high - low) * 0.05
        low = max(0, low - pad)
        high += pad
        func x(_ step: Int) -> Double { left + Double(step) / Double(maxStep) * (width - left - right) }
        func y(_ loss: Double) -> Double { top + (high - loss) / (high - low) * (height - top - bottom) }
        func number(_ value: Double) -> String { String(format: "%.1f", value) }

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(number(width / 2))" y="22" text-anchor="middle" font-size="14">\(escaped(title))</text>

        """
        // Axes, ticks and grid.
        let plotBottom = height - bottom
        svg += "<line x1=\"\(number(left))\" y1=\"\(number(top))\" x2=\"\(number(left))\" y2=\"\(number(plotBottom))\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(number(left))\" y1=\"\(number(plotBottom))\" x2=\"\(number(width - right))\" y2=\"\(number(plotBottom))\" stroke=\"black\"/>\n"
        for tick in ticks(0, Double(maxStep)) {
            let px = x(Int(tick))
            svg += "<line x1=\"\(number(px))\" y1=\"\(number(plotBottom))\" x2=\"\(number(px))\" y2=\"\(number(plotBottom + 5))\" stroke=\"black\"/>"
            svg += "<text x=\"\(number(px))\" y=\"\(number(plotBottom + 18))\" text-anchor=\"middle\">\(Int(tick))</text>\n"
        }
        for tick in ticks(low, high) {
            let py = y(tick)
            svg += "<line x1=\"\(number(left))\" y1=\"\(number(py))\" x2=\"\(number(width - right))\" y2=\"\(number(py))\" stroke=\"#e5e5e5\"/>"
            svg += "<text x=\"\(number(left - 6))\" y=\"\(number(py + 4))\" text-anchor=\"end\">\(String(format: "%g", tick))</text>\n"
        }
        svg += "<text x=\"\(number((left + width - right) / 2))\" y=\"\(number(height - 12))\" text-anchor=\"middle\">step</text>\n"
        svg += "<text transform=\"translate(18 \(number((top + plotBottom) / 2))) rotate(-90)\" text-anchor=\"middle\">loss (nats per token)</text>\n"
        // Curves.
        for (series, color, label, row) in [(train, "#1f77b4", "train", 0), (validation, "#d62728", "validation", 1)] where !series.isEmpty {
            let path = series.filter { $0.loss.isFinite }.map { "\(number(x($0.step))),\(number(y($0.loss)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(row == 0 ? 1.2 : 2)\" points=\"\(path)\"/>\n"
            if row == 1 {
                for point in series where point.loss.isFinite {
                    svg += "<circle cx=\"\(number(x(point.step)))\" cy=\"\(number(y(point.loss)))\" r=\"2.5\" fill=\"\(color)\"/>"
                }
                svg += "\n"
            }
            let ly = top + 10 + Double(row) * 18
            svg += "<line x1=\"\(number(width - right - 120))\" y1=\"\(number(ly))\" x2=\"\(number(width - right - 96))\" y2=\"\(number(ly))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(number(width - right - 90))\" y=\"\(number(ly + 4))\">\(label)</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// About five round tick values covering low...high.
    static func ticks(_ low: Double, _ high: Double) -> [Double] {
        let span = max(high - low, 1e-9)
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var values: [Double] = []
        var value = (low / step).rounded(.up) * step
        while value <= high + step * 1e-9 {
            values.append(value)
            value += step
        }
        return values
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
