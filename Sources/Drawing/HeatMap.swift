import Foundation

/// A grid of numbers as an SVG heat map: row labels down the side, column labels along the top,
/// an optional short text in each cell, the exact value in each cell's tooltip. Sequential
/// values (0…max: white to blue) or diverging ones (−m…m: red through white to blue), with the
/// colour scale drawn under the grid. The logit lens, the attribution and patching draw with it.
public enum HeatMap {
    public enum Scale: Sendable {
        /// From 0 (white) to `maximum` (dark blue).
        case sequential(maximum: Double)
        /// From −`magnitude` (red) through 0 (white) to `magnitude` (blue).
        case diverging(magnitude: Double)
    }

    /// values: [rows][columns]; cellText: the same shape, or nil for colour only.
    public static func svg(values: [[Double]], rowLabels: [String], columnLabels: [String], cellText: [[String]]? = nil,
                           scale: Scale, title: String, caption: String, valueFormat: String = "%.3f") -> String {
        precondition(values.count == rowLabels.count && values.allSatisfy { $0.count == columnLabels.count },
                     "HeatMap: values must be [rows][columns] like the labels")
        let (rows, columns) = (rowLabels.count, columnLabels.count)
        let cellWidth = cellText == nil ? max(8.0, min(40.0, 900.0 / Double(max(columns, 1)))) : max(34.0, min(72.0, 1100.0 / Double(max(columns, 1))))
        let cellHeight = cellText == nil ? min(cellWidth, 22.0) : 18.0
        let rowLabelWidth = 8 + 7 * Double(min(18, rowLabels.map(\.count).max() ?? 0))
        let columnLabelHeight = 8 + 6.5 * Double(min(18, columnLabels.map(\.count).max() ?? 0))
        let (left, top) = (16 + rowLabelWidth, 56 + columnLabelHeight)
        // Wide enough for the grid and for the title and caption beside it.
        let width = max(left + Double(columns) * cellWidth + 24, 24 + 7.6 * Double(title.count), 24 + 6 * Double(caption.count))
        let height = top + Double(rows) * cellHeight + 70
        func number(_ value: Double) -> String { String(format: "%.1f", value) }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(number(width))" height="\(number(height))" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="16" y="22" font-size="14">\(LossPlot.escaped(title))</text>
        <text x="16" y="40" font-size="11" fill="#555">\(LossPlot.escaped(caption))</text>

        """
        for (index, label) in columnLabels.enumerated() {
            let x = left + (Double(index) + 0.6) * cellWidth
            svg += "<text transform=\"translate(\(number(x)),\(number(top - 4))) rotate(-60)\">\(LossPlot.escaped(String(label.prefix(18))))</text>\n"
        }
        for (row, label) in rowLabels.enumerated() {
            let y = top + Double(row) * cellHeight
            svg += "<text x=\"\(number(left - 4))\" y=\"\(number(y + cellHeight * 0.72))\" text-anchor=\"end\">\(LossPlot.escaped(String(label.prefix(18))))</text>"
            for column in 0..<columns {
                let value = values[row][column]
                let (fill, dark) = colour(value, scale)
                let x = left + Double(column) * cellWidth
                svg += "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(cellWidth))\" height=\"\(number(cellHeight))\" fill=\"\(fill)\" stroke=\"white\" stroke-width=\"0.5\">"
                let tip = "\(label) · \(columnLabels[column]): \(String(format: valueFormat, value))" + (cellText.map { " · \($0[row][column])" } ?? "")
                svg += "<title>\(LossPlot.escaped(tip))</title></rect>"
                if let text = cellText?[row][column], !text.isEmpty {
                    svg += "<text x=\"\(number(x + cellWidth / 2))\" y=\"\(number(y + cellHeight * 0.72))\" text-anchor=\"middle\" font-size=\"10\" fill=\"\(dark ? "white" : "#111")\">\(LossPlot.escaped(String(text.prefix(Int(cellWidth / 6)))))</text>"
                }
            }
            svg += "\n"
        }
        // The colour scale.
        let legendY = top + Double(rows) * cellHeight + 22
        let (low, high): (Double, Double) = switch scale {
        case .sequential(let maximum): (0, maximum)
        case .diverging(let magnitude): (-magnitude, magnitude)
        }
        for step in 0..<40 {
            let value = low + (high - low) * Double(step) / 39
            svg += "<rect x=\"\(number(left + Double(step) * 5))\" y=\"\(number(legendY))\" width=\"5\" height=\"10\" fill=\"\(colour(value, scale).fill)\"/>"
        }
        svg += "<text x=\"\(number(left))\" y=\"\(number(legendY + 24))\">\(String(format: "%.3g", low))</text>"
        svg += "<text x=\"\(number(left + 200))\" y=\"\(number(legendY + 24))\" text-anchor=\"end\">\(String(format: "%.3g", high))</text>\n"
        return svg + "</svg>\n"
    }

    /// A value's fill, and whether it is dark (text on it is then white).
    static func colour(_ value: Double, _ scale: Scale) -> (fill: String, dark: Bool) {
        switch scale {
        case .sequential(let maximum):
            let level = maximum > 0 ? max(0, min(1, value / maximum)) : 0
            return (String(format: "rgb(%d,%d,%d)", Int(255 - 247 * level), Int(255 - 207 * level), Int(255 - 148 * level)), level > 0.55)
        case .diverging(let magnitude):
            let level = magnitude > 0 ? max(-1, min(1, value / magnitude)) : 0
            if level >= 0 {
                return (String(format: "rgb(%d,%d,%d)", Int(255 - 222 * level), Int(255 - 153 * level), Int(255 - 83 * level)), level > 0.6)
            }
            let a = -level
            return (String(format: "rgb(%d,%d,%d)", Int(255 - 77 * a), Int(255 - 231 * a), Int(255 - 212 * a)), a > 0.6)
        }
    }
}
