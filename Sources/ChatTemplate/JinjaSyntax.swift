/// An expression inside a tag.
indirect enum JinjaExpression {
    case literal(JinjaValue)
    case variable(String)
    case list([JinjaExpression])
    case dictionary([(JinjaExpression, JinjaExpression)])
    case attribute(JinjaExpression, String)
    case index(JinjaExpression, JinjaExpression)
    case slice(JinjaExpression, start: JinjaExpression?, stop: JinjaExpression?, step: JinjaExpression?)
    case call(JinjaExpression, JinjaArguments)
    case filter(JinjaExpression, String, JinjaArguments)
    case test(JinjaExpression, String, JinjaArguments, negated: Bool)
    case unary(String, JinjaExpression)
    case binary(String, JinjaExpression, JinjaExpression)
    case conditional(JinjaExpression, then: JinjaExpression, otherwise: JinjaExpression?)
}

/// Positional and keyword arguments of a call, filter or test.
struct JinjaArguments {
    var positional: [JinjaExpression] = []
    var keywords: [(String, JinjaExpression)] = []
}

/// A statement or piece of text of the template, with the line errors will name.
indirect enum JinjaNode {
    case text(String)
    case output(JinjaExpression, line: Int)
    case forLoop(targets: [String], iterable: JinjaExpression, filter: JinjaExpression?, body: [JinjaNode], otherwise: [JinjaNode], line: Int)
    case conditional(branches: [(JinjaExpression, [JinjaNode])], otherwise: [JinjaNode], line: Int)
    /// `set name = …`, `set a, b = …` or `set ns.attribute = …`.
    case assign(targets: [String], attribute: String?, value: JinjaExpression, line: Int)
    /// `{% set name %}…{% endset %}`
    case capture(name: String, body: [JinjaNode])
    case macro(name: String, parameters: [(String, JinjaExpression?)], body: [JinjaNode])
    /// `{% break %}` and `{% continue %}` (the loop-controls extension Hugging Face enables).
    case loopControl(isBreak: Bool, line: Int)
}

/// Parses the segments of ``JinjaLexer`` into nodes: statements nest by their end tags, and
/// expressions follow Jinja's precedence (loosest first): conditional, `or`, `and`, `not`,
/// comparisons and `in`, `+ -`, `~`, `* / // %`, `**`, unary minus, then filters, tests,
/// attributes, subscripts and calls.
struct JinjaParser {
    private let segments: [JinjaSegment]
    private var position = 0
    private var depth = 0

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(segments: try JinjaLexer.segments(source))
        let (nodes, end) = try parser.block(until: [])
        if let (keyword, _, line) = end { throw TemplateError(line: line, "'\(keyword)' without an opening statement") }
        return nodes
    }

    private init(segments: [JinjaSegment]) { self.segments = segments }

    /// Nodes up to one of the `until` keywords (returned with the rest of its tag), or the end.
    private mutating func block(until: Set<String>) throws -> ([JinjaNode], (String, ExpressionParser, Int)?) {
        depth += 1
        defer { depth -= 1 }
        guard depth <= ExpressionParser.maximumDepth else { throw TemplateError("statements nest deeper than \(ExpressionParser.maximumDepth) levels") }
        var nodes: [JinjaNode] = []
        while position < segments.count {
            let segment = segments[position]
            position += 1
            switch segment {
            case .text(let text): nodes.append(.text(text))
            case .output(let tokens, let line):
                var parser = ExpressionParser(tokens: tokens, line: line)
                let expression = try parser.expression()
                try parser.expectEnd()
                nodes.append(.output(expression, line: line))
            case .statement(let tokens, let line):
                var parser = ExpressionParser(tokens: tokens, line: line)
                guard case .name(let keyword) = parser.next() else { throw TemplateError(line: line, "a statement must start with a keyword") }
                if until.contains(keyword) { return (nodes, (keyword, parser, line)) }
                nodes.append(try statement(keyword, &parser, line: line))
            }
        }
        if let expected = until.sorted().last { throw TemplateError("the template ends before '{% \(expected) %}'") }
        return (nodes, nil)
    }

    private mutating func statement(_ keyword: String, _ parser: inout ExpressionParser, line: Int) throws -> JinjaNode {
        switch keyword {
        case "for":
            var targets = [try parser.name()]
            while parser.consume(.symbol(",")) { targets.append(try parser.name()) }
            try parser.expect(.name("in"))
            let iterable = try parser.expression(allowConditional: false)
            let filter = parser.consume(.name("if")) ? try parser.expression(allowConditional: false) : nil
            _ = parser.consume(.name("recursive"))
            try parser.expectEnd()
            var (body, end) = try block(until: ["else", "endfor"])
            var otherwise: [JinjaNode] = []
            if end?.0 == "else" {
                (otherwise, end) = try block(until: ["endfor"])
            }
            return .forLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, line: line)
        case "if":
            var branches: [(JinjaExpression, [JinjaNode])] = []
            var condition = try parser.expression()
            try parser.expectEnd()
            while true {
                let (body, end) = try block(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                guard let (keyword, restOfTag, _) = end else { throw TemplateError(line: line, "'if' is never closed") }
                if keyword == "elif" {
                    var rest = restOfTag
                    condition = try rest.expression()
                    try rest.expectEnd()
                    continue
                }
                var otherwise: [JinjaNode] = []
                if keyword == "else" { (otherwise, _) = try block(until: ["endif"]) }
                return .conditional(branches: branches, otherwise: otherwise, line: line)
            }
        case "set":
            var targets = [try parser.name()]
            var attribute: String?
            if parser.consume(.symbol(".")) { attribute = try parser.name() }
            while parser.consume(.symbol(",")) { targets.append(try parser.name()) }
            if parser.atEnd {
                let (body, _) = try block(until: ["endset"])
                return .capture(name: targets[0], body: body)
            }
            try parser.expect(.symbol("="))
            let value = try parser.expression()
            try parser.expectEnd()
            return .assign(targets: targets, attribute: attribute, value: value, line: line)
        case "macro":
            let name = try parser.name()
            try parser.expect(.symbol("("))
            var parameters: [(String, JinjaExpression?)] = []
            while !parser.consume(.symbol(")")) {
                let parameter = try parser.name()
                parameters.append((parameter, parser.consume(.symbol("=")) ? try parser.expression() : nil))
                _ = parser.consume(.symbol(","))
            }
            try parser.expectEnd()
            let (body, _) = try block(until: ["endmacro"])
            return .macro(name: name, parameters: parameters, body: body)
        case "generation":
            // Hugging Face's marker of assistant text (for training masks): renders its body.
            let (body, _) = try block(until: ["endgeneration"])
            return .conditional(branches: [(.literal(.bool(true)), body)], otherwise: [], line: line)
        case "break", "continue":
            try parser.expectEnd()
            return .loopControl(isBreak: keyword == "break", line: line)
        case _ where keyword.hasPrefix("end") || keyword == "else" || keyword == "elif":
            throw TemplateError(line: line, "'\(keyword)' without an opening statement")
        default:
            throw TemplateError(line: line, "the statement '{% \(keyword) %}' is not implemented")
        }
    }
}

/// Recursive descent over one tag's tokens.
struct ExpressionParser {
    private let tokens: [JinjaToken]
    private var position = 0
    let line: Int
    /// Nesting of parentheses, brackets and operators so far: a hostile template cannot
    /// exhaust the stack.
    private var depth = 0
    static let maximumDepth = 200

    init(tokens: [JinjaToken], line: Int) {
        self.tokens = tokens
        self.line = line
    }

    var atEnd: Bool { position >= tokens.count }
    private var peek: JinjaToken? { position < tokens.count ? tokens[position] : nil }

    mutating func next() -> JinjaToken? {
        defer { position += 1 }
        return peek
    }

    mutating func consume(_ token: JinjaToken) -> Bool {
        guard peek == token else { return false }
        position += 1
        return true
    }

    mutating func expect(_ token: JinjaToken) throws {
        guard consume(token) else { throw error("expected \(describe(token))") }
    }

    func expectEnd() throws {
        guard atEnd else { throw error("unexpected \(describe(tokens[position])) (or a construct that is not implemented)") }
    }

    mutating func name() throws -> String {
        guard case .name(let name) = peek else { throw error("expected a name") }
        position += 1
        return name
    }

    private func describe(_ token: JinjaToken) -> String {
        switch token {
        case .name(let name): "'\(name)'"
        case .string(let text): "the string '\(text)'"
        case .int(let value): "\(value)"
        case .double(let value): "\(value)"
        case .symbol(let symbol): "'\(symbol)'"
        }
    }

    private func error(_ message: String) -> TemplateError {
        TemplateError(line: line, message + (atEnd ? " at the end of the tag" : " at \(describe(tokens[position]))"))
    }

    /// A full expression; `a if b else c` unless `allowConditional` is false (a `for` head).
    mutating func expression(allowConditional: Bool = true) throws -> JinjaExpression {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw error("expressions nest deeper than \(Self.maximumDepth) levels") }
        let value = try or()
        guard allowConditional, consume(.name("if")) else { return value }
        let condition = try or()
        let otherwise = consume(.name("else")) ? try expression() : nil
        return .conditional(condition, then: value, otherwise: otherwise)
    }

    private mutating func or() throws -> JinjaExpression {
        var left = try and()
        while consume(.name("or")) { left = .binary("or", left, try and()) }
        return left
    }

    private mutating func and() throws -> JinjaExpression {
        var left = try not()
        while consume(.name("and")) { left = .binary("and", left, try not()) }
        return left
    }

    private mutating func not() throws -> JinjaExpression {
        if consume(.name("not")) {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maximumDepth else { throw error("expressions nest deeper than \(Self.maximumDepth) levels") }
            return .unary("not", try not())
        }
        return try comparison()
    }

    private mutating func comparison() throws -> JinjaExpression {
        var left = try sum()
        while true {
            if case .symbol(let symbol) = peek, ["==", "!=", "<", ">", "<=", ">="].contains(symbol) {
                position += 1
                left = .binary(symbol, left, try sum())
            } else if consume(.name("in")) {
                left = .binary("in", left, try sum())
            } else if peek == .name("not"), position + 1 < tokens.count, tokens[position + 1] == .name("in") {
                position += 2
                left = .unary("not", .binary("in", left, try sum()))
            } else {
                return left
            }
        }
    }

    private mutating func sum() throws -> JinjaExpression {
        var left = try concatenation()
        while case .symbol(let symbol) = peek, symbol == "+" || symbol == "-" {
            position += 1
            left = .binary(symbol, left, try concatenation())
        }
        return left
    }

    private mutating func concatenation() throws -> JinjaExpression {
        var left = try product()
        while consume(.symbol("~")) { left = .binary("~", left, try product()) }
        return left
    }

    private mutating func product() throws -> JinjaExpression {
        var left = try power()
        while case .symbol(let symbol) = peek, ["*", "/", "//", "%"].contains(symbol) {
            position += 1
            left = .binary(symbol, left, try power())
        }
        return left
    }

    private mutating func power() throws -> JinjaExpression {
        let left = try unary()
        return consume(.symbol("**")) ? .binary("**", left, try unary()) : left
    }

    private mutating func unary() throws -> JinjaExpression {
        if peek == .symbol("-") || peek == .symbol("+") {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maximumDepth else { throw error("expressions nest deeper than \(Self.maximumDepth) levels") }
        }
        if consume(.symbol("-")) { return try filtered(.unary("-", try unary())) }
        if consume(.symbol("+")) { return try unary() }
        return try filtered(try postfix(try primary()))
    }

    /// `| filter(args)` and `is [not] test(args)` after a value.
    private mutating func filtered(_ base: JinjaExpression) throws -> JinjaExpression {
        var value = base
        while true {
            if consume(.symbol("|")) {
                let name = try name()
                value = .filter(value, name, peek == .symbol("(") ? try arguments() : JinjaArguments())
            } else if consume(.name("is")) {
                let negated = consume(.name("not"))
                let name = try testName()
                var arguments = JinjaArguments()
                if peek == .symbol("(") {
                    arguments = try self.arguments()
                } else if let token = peek, takesBareArgument(token) {
                    // `x is equalto 'a'`, `n is divisibleby 3`: one argument without parentheses.
                    arguments.positional = [try primary()]
                }
                value = .test(value, name, arguments, negated: negated)
            } else {
                return value
            }
        }
    }

    private func takesBareArgument(_ token: JinjaToken) -> Bool {
        switch token {
        case .string, .int, .double: true
        case .name(let word): !["and", "or", "else", "if", "is", "in", "not", "recursive"].contains(word)
        case .symbol: false
        }
    }

    /// A test's name: a name, or `none`/`true`/`false` spelled as the keywords.
    private mutating func testName() throws -> String {
        guard case .name(let name) = peek else { throw error("expected the name of a test") }
        position += 1
        return name.lowercased() == "none" ? "none" : name
    }

    private mutating func postfix(_ base: JinjaExpression) throws -> JinjaExpression {
        var value = base
        while true {
            if consume(.symbol(".")) {
                value = .attribute(value, try name())
            } else if consume(.symbol("[")) {
                var start: JinjaExpression?
                if peek != .symbol(":") { start = try expression() }
                if consume(.symbol(":")) {
                    let stop = peek == .symbol(":") || peek == .symbol("]") ? nil : try expression()
                    var step: JinjaExpression?
                    if consume(.symbol(":")), peek != .symbol("]") { step = try expression() }
                    value = .slice(value, start: start, stop: stop, step: step)
                } else {
                    guard let start else { throw error("expected a subscript") }
                    value = .index(value, start)
                }
                try expect(.symbol("]"))
            } else if peek == .symbol("(") {
                value = .call(value, try arguments())
            } else {
                return value
            }
        }
    }

    private mutating func arguments() throws -> JinjaArguments {
        try expect(.symbol("("))
        var arguments = JinjaArguments()
        while !consume(.symbol(")")) {
            if case .name(let name) = peek, position + 1 < tokens.count, tokens[position + 1] == .symbol("=") {
                position += 2
                arguments.keywords.append((name, try expression()))
            } else {
                arguments.positional.append(try expression())
            }
            if !consume(.symbol(",")) {
                try expect(.symbol(")"))
                break
            }
        }
        return arguments
    }

    private mutating func primary() throws -> JinjaExpression {
        guard let token = next() else { throw error("expected a value") }
        switch token {
        case .string(var text):
            // Adjacent literals join, as in Python.
            while case .string(let more) = peek {
                text += more
                position += 1
            }
            return .literal(.string(text))
        case .int(let value): return .literal(.int(value))
        case .double(let value): return .literal(.double(value))
        case .name(let name):
            switch name {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .variable(name)
            }
        case .symbol("("):
            let first = try expression()
            if consume(.symbol(")")) { return first }
            var items = [first]
            while consume(.symbol(",")) {
                if peek == .symbol(")") { break }
                items.append(try expression())
            }
            try expect(.symbol(")"))
            return .list(items)
        case .symbol("["):
            var items: [JinjaExpression] = []
            while !consume(.symbol("]")) {
                items.append(try expression())
                if !consume(.symbol(",")) {
                    try expect(.symbol("]"))
                    break
                }
            }
            return .list(items)
        case .symbol("{"):
            var pairs: [(JinjaExpression, JinjaExpression)] = []
            while !consume(.symbol("}")) {
                let key = try expression()
                try expect(.symbol(":"))
                pairs.append((key, try expression()))
                if !consume(.symbol(",")) {
                    try expect(.symbol("}"))
                    break
                }
            }
            return .dictionary(pairs)
        default:
            position -= 1
            throw error("expected a value")
        }
    }
}
