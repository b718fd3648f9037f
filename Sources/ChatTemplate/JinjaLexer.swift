/// One token inside a `{{ … }}` or `{% … %}` tag.
enum JinjaToken: Equatable {
    case name(String)
    case string(String)
    case int(Int)
    case double(Double)
    /// An operator or punctuation: `==`, `(`, `|`, …
    case symbol(String)
}

/// The template cut into text and tags, with Jinja's whitespace control applied as Hugging Face
/// configures it (`trim_blocks` and `lstrip_blocks` on): the first newline after a block or
/// comment tag is dropped, spaces and tabs before a block tag on its own line are dropped, and
/// `-` inside a tag's delimiters (`{%-`, `-%}`) strips all whitespace on that side.
enum JinjaSegment {
    case text(String)
    /// `{{ … }}`, its tokens and the line it starts on.
    case output([JinjaToken], line: Int)
    /// `{% … %}`
    case statement([JinjaToken], line: Int)
}

enum JinjaLexer {
    static func segments(_ source: String) throws -> [JinjaSegment] {
        let scalars = normalizedNewlines(source)
        var segments: [JinjaSegment] = []
        var text = String.UnicodeScalarView()
        var index = 0, line = 1
        var stripNextWhitespace = false, dropNextNewline = false
        // Whether the pending text starts at the start of a source line (for lstrip_blocks).
        var textStartsLine = true

        func flushText() {
            if !text.isEmpty { segments.append(.text(String(text))) }
            text = String.UnicodeScalarView()
        }
        while index < scalars.count {
            let scalar = scalars[index]
            let next = index + 1 < scalars.count ? scalars[index + 1] : " "
            let opens = scalar == "{" && (next == "{" || next == "%" || next == "#")
            if !opens {
                if stripNextWhitespace && scalar.properties.isWhitespace {
                    if scalar == "\n" {
                        line += 1
                        textStartsLine = true
                    }
                    index += 1
                    continue
                }
                stripNextWhitespace = false
                if dropNextNewline {
                    dropNextNewline = false
                    if scalar == "\n" {
                        line += 1
                        index += 1
                        textStartsLine = true
                        continue
                    }
                }
                if scalar == "\n" { line += 1 }
                text.append(scalar)
                index += 1
                continue
            }
            stripNextWhitespace = false
            dropNextNewline = false
            let kind = next, tagLine = line
            var bodyStart = index + 2
            if bodyStart < scalars.count && scalars[bodyStart] == "-" {
                // `{%-`: strip all whitespace before the tag.
                while let last = text.last, last.properties.isWhitespace { text.removeLast() }
                bodyStart += 1
            } else if kind != "{" && !(bodyStart < scalars.count && scalars[bodyStart] == "+") {
                // lstrip_blocks: spaces and tabs from the start of the line to a block or comment tag.
                var trailing = 0
                for scalar in text.reversed() {
                    if scalar == " " || scalar == "\t" { trailing += 1 } else { break }
                }
                let before = text.count - trailing
                let startsLine = before == 0 ? textStartsLine : Array(text)[before - 1] == "\n"
                if startsLine { text.removeLast(trailing) }
            }
            if bodyStart < scalars.count && scalars[bodyStart] == "+" { bodyStart += 1 }
            let closer: Unicode.Scalar = kind == "{" ? "}" : kind == "%" ? "%" : "#"
            // Find the closing delimiter (outside string literals for tags with expressions).
            var end = bodyStart, quote: Unicode.Scalar? = nil
            while end + 1 < scalars.count {
                let character = scalars[end]
                if let open = quote {
                    if character == "\\" { end += 2; continue }
                    if character == open { quote = nil }
                } else if kind != "#" && (character == "'" || character == "\"") {
                    quote = character
                } else if character == closer && scalars[end + 1] == "}" {
                    break
                }
                if character == "\n" { line += 1 }
                end += 1
            }
            guard end + 1 < scalars.count else {
                throw TemplateError(line: tagLine, "a tag opened with '{\(kind)' is never closed")
            }
            var bodyEnd = end
            let stripsAfter = bodyEnd > bodyStart && scalars[bodyEnd - 1] == "-"
            if stripsAfter { bodyEnd -= 1 }
            let body = String(String.UnicodeScalarView(scalars[bodyStart..<bodyEnd]))
            flushText()
            textStartsLine = false
            switch kind {
            case "{": segments.append(.output(try tokens(body, line: tagLine), line: tagLine))
            case "%": segments.append(.statement(try tokens(body, line: tagLine), line: tagLine))
            default: break  // a comment
            }
            index = end + 2
            stripNextWhitespace = stripsAfter
            dropNextNewline = !stripsAfter && kind != "{"
        }
        flushText()
        return segments
    }

    /// The source as Jinja reads it: every `\r\n` and `\r` a `\n` (in text and string literals
    /// alike), and one final newline dropped (`keep_trailing_newline` is off).
    static func normalizedNewlines(_ source: String) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.unicodeScalars.count)
        var afterCarriageReturn = false
        for scalar in source.unicodeScalars {
            if scalar == "\n" && afterCarriageReturn {
                afterCarriageReturn = false
                continue
            }
            afterCarriageReturn = scalar == "\r"
            scalars.append(afterCarriageReturn ? "\n" : scalar)
        }
        if scalars.last == "\n" { scalars.removeLast() }
        return scalars
    }

    static let symbols = ["==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "(", ")", "[", "]", "{", "}",
                          ",", ":", ".", "|", "=", "<", ">"]

    /// The tokens of one tag's body.
    static func tokens(_ body: String, line: Int) throws -> [JinjaToken] {
        let scalars = Array(body.unicodeScalars)
        var tokens: [JinjaToken] = []
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar.properties.isWhitespace {
                index += 1
            } else if scalar == "'" || scalar == "\"" {
                var value = String.UnicodeScalarView()
                index += 1
                while index < scalars.count && scalars[index] != scalar {
                    if scalars[index] == "\\", index + 1 < scalars.count {
                        index += 1
                        switch scalars[index] {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "r": value.append("\r")
                        default: value.append(scalars[index])
                        }
                    } else {
                        value.append(scalars[index])
                    }
                    index += 1
                }
                guard index < scalars.count else { throw TemplateError(line: line, "a string literal is never closed") }
                index += 1
                tokens.append(.string(String(value)))
            } else if ("0"..."9").contains(scalar) {
                var end = index
                while end < scalars.count && (("0"..."9").contains(scalars[end]) || scalars[end] == "_") { end += 1 }
                var isDouble = false
                if end + 1 < scalars.count && scalars[end] == "." && ("0"..."9").contains(scalars[end + 1]) {
                    isDouble = true
                    end += 1
                    while end < scalars.count && ("0"..."9").contains(scalars[end]) { end += 1 }
                }
                // An exponent (`1e-5`, `2.5E3`) makes a float, as in Jinja.
                if end < scalars.count && (scalars[end] == "e" || scalars[end] == "E") {
                    var digits = end + 1
                    if digits < scalars.count && (scalars[digits] == "+" || scalars[digits] == "-") { digits += 1 }
                    if digits < scalars.count && ("0"..."9").contains(scalars[digits]) {
                        isDouble = true
                        end = digits
                        while end < scalars.count && ("0"..."9").contains(scalars[end]) { end += 1 }
                    }
                }
                let literal = String(String.UnicodeScalarView(scalars[index..<end])).replacingOccurrences(of: "_", with: "")
                if isDouble { tokens.append(.double(Double(literal)!)) } else {
                    guard let value = Int(literal) else { throw TemplateError(line: line, "the number \(literal) is too large") }
                    tokens.append(.int(value))
                }
                index = end
            } else if scalar.properties.isAlphabetic || scalar == "_" {
                var end = index
                while end < scalars.count && (scalars[end].properties.isAlphabetic || scalars[end] == "_" || ("0"..."9").contains(scalars[end])) { end += 1 }
                tokens.append(.name(String(String.UnicodeScalarView(scalars[index..<end]))))
                index = end
            } else {
                let rest = String(String.UnicodeScalarView(scalars[index..<min(index + 2, scalars.count)]))
                guard let symbol = symbols.first(where: { rest.hasPrefix($0) }) else {
                    throw TemplateError(line: line, "unexpected character '\(scalar)'")
                }
                tokens.append(.symbol(symbol))
                index += symbol.unicodeScalars.count
            }
        }
        return tokens
    }
}
