/// Several SVG documents one above the other in one: a view with more than one picture (the
/// attribution's blocks and heads, patching's stream and heads) in one file.
public enum SVGStack {
    public static func stacked(_ documents: [String]) -> String {
        var y = 0.0, width = 0.0, body = ""
        for document in documents {
            let (w, h) = (attribute("width", of: document), attribute("height", of: document))
            body += "<g transform=\"translate(0,\(y))\">\(document)</g>\n"
            y += h
            width = max(width, w)
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(y)\">\n" + body + "</svg>\n"
    }

    /// A number-valued attribute of a document's root element (its first occurrence).
    static func attribute(_ name: String, of document: String) -> Double {
        guard let range = document.range(of: " \(name)=\""), let end = document[range.upperBound...].firstIndex(of: "\"") else { return 0 }
        return Double(document[range.upperBound..<end]) ?? 0
    }
}
