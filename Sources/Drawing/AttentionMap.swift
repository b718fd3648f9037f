import Foundation

/// Attention weights as SVG heat maps: one panel per head, query tokens down the side, key tokens
/// along the top, one cell per (query, key) pair, darker for more weight. Positions a query
/// cannot see (above the diagonal) are drawn pale grey.
public enum AttentionMap {
    /// weights: one `[T, T]` row-major matrix per panel; labels: T token labels (all empty: none
    /// drawn, small panels); titles: one per panel; columns: panels a row (default: a square grid).
    public static func svg(weights: [[Float]], labels: [String], titles: [String], caption: String, columns wanted: Int? = nil) -> String {
        let t = labels.count
        precondition(weights.count == titles.count && weights.allSatisfy { $0.count == t * t }, "AttentionMap: weights must be [T, T] per panel")
        let columns = wanted ?? Int(Double(weights.count).squareRoot().rounded(.up))
        let rows = (weights.count + columns - 1) / columns
        let thumbnails = labels.allSatisfy(\.isEmpty)
        let cell = thumbnails ? max(1.5, min(8.0, 120.0 / Double(max(t, 1)))) : max(3.0, min(22.0, 480.0 / Double(max(t, 1))))
        let labelSpace = t <= 96 && !thumbnails ? 90.0 : 0.0, margin = 16.0, titleHeight = 20.0
        // A thumbnail's panel is still as wide as its title (the head's statistics).
        let panel = labelSpace + cell * Double(t) + margin, panelWidth = max(panel, thumbnails ? 150 : 0)
        let width = Double(columns) * panelWidth + margin, height = 40 + Double(rows) * (panel + titleHeight)
        let showLabels = labelSpace > 0, tooltips = t <= 64
        func number(_ value: Double) -> String { String(format: "%.1f", value) }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(number(width))" height="\(number(height))" font-family="sans-serif" font-size="\(number(min(11, max(6, cell * 0.6))))">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(number(margin))" y="24" font-size="14">\(LossPlot.escaped(caption))</text>

        """
        for (index, matrix) in weights.enumerated() {
            let originX = margin + Double(index % columns) * panelWidth
            let originY = 40 + Double(index / columns) * (panel + titleHeight)
            let gridX = originX + labelSpace, gridY = originY + titleHeight + labelSpace
            svg += "<g class=\"panel\"><text x=\"\(number(gridX))\" y=\"\(number(originY + 14))\" font-size=\"\(thumbnails ? 10 : 12)\">\(LossPlot.escaped(titles[index]))</text>\n"
            if showLabels {
                for (position, label) in labels.enumerated() {
                    svg += "<text x=\"\(number(gridX - 3))\" y=\"\(number(gridY + Double(position) * cell + cell * 0.75))\" text-anchor=\"end\">\(LossPlot.escaped(label))</text>"
                    svg += "<text transform=\"translate(\(number(gridX + Double(position) * cell + cell * 0.75)),\(number(gridY - 3))) rotate(-90)\">\(LossPlot.escaped(label))</text>\n"
                }
            }
            for query in 0..<t {
                for key in 0..<t {
                    let weight = matrix[query * t + key]
                    let fill: String
                    if key > query {
                        fill = "#eeeeee"
                    } else {
                        // Square root: small weights stay visible beside a dominant one.
                        let level = Double(max(0, min(1, weight))).squareRoot()
                        fill = String(format: "rgb(%d,%d,%d)", Int(255 - 247 * level), Int(255 - 207 * level), Int(255 - 148 * level))
                    }
                    svg += "<rect class=\"cell\" x=\"\(number(gridX + Double(key) * cell))\" y=\"\(number(gridY + Double(query) * cell))\" width=\"\(number(cell))\" height=\"\(number(cell))\" fill=\"\(fill)\""
                    svg += tooltips ? "><title>\(LossPlot.escaped("\(labels[query]) → \(labels[key]): \(String(format: "%.3f", weight))"))</title></rect>" : "/>"
                }
                svg += "\n"
            }
            svg += "</g>\n"
        }
        return svg + "</svg>\n"
    }

    /// A token's text made printable in a label: control characters become visible symbols.
    public static func label(_ bytes: [UInt8]) -> String {
        var text = ""
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            switch scalar {
            case " ": text += "␣"
            case "\n": text += "↵"
            case "\t": text += "⇥"
            case "\r": text += "␍"
            default: text.unicodeScalars.append(scalar.properties.generalCategory == .control || scalar == "\u{FFFE}" || scalar == "\u{FFFF}" ? "·" : scalar)
            }
        }
        return text
    }
}
