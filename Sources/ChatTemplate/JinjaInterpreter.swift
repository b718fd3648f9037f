import Foundation

/// Renders parsed template nodes: variables in nested scopes (a `for` body is a scope of its own,
/// so a `set` inside a loop does not leak out, as in Jinja; `namespace` carries state instead).
final class JinjaInterpreter {
    private var scopes: [[String: JinjaValue]]
    private var output = ""
    /// Set by `{% break %}` / `{% continue %}` until the loop takes it.
    private var pendingLoopControl: Bool?
    /// Work left before a template is stopped as runaway (loop iterations and macro calls), and
    /// the largest prompt it may write: a model file's template cannot hang or exhaust memory.
    private var budget = 10_000_000
    static let maximumOutput = 64 << 20, maximumMacroDepth = 100
    /// How deep the lists and dictionaries a template builds may nest: printing, comparing and
    /// freeing a value recurse through it, so a loop wrapping a list in a list would otherwise
    /// overflow the stack.
    static let maximumNesting = 200
    private var macroDepth = 0

    init(globals: [String: JinjaValue]) {
        scopes = [JinjaBuiltins.globals.merging(globals) { _, given in given }]
    }

    func render(_ nodes: [JinjaNode]) throws -> String {
        try run(nodes)
        return output
    }

    private func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() { if let value = scope[name] { return value } }
        return .undefined
    }

    private func assign(_ name: String, _ value: JinjaValue) { scopes[scopes.count - 1][name] = value }

    private func run(_ nodes: [JinjaNode]) throws {
        for node in nodes {
            if pendingLoopControl != nil { return }
            switch node {
            case .text(let text): output += text
            case .output(let expression, let line):
                output += try located(line) { try evaluate(expression).printed }
                guard output.utf8.count <= Self.maximumOutput else {
                    throw TemplateError(line: line, "the template writes more than \(Self.maximumOutput >> 20) MiB")
                }
            case .forLoop(let targets, let iterable, let filter, let body, let otherwise, let line):
                try forLoop(targets, iterable, filter, body, otherwise, line: line)
            case .conditional(let branches, let otherwise, let line):
                var taken = false
                for (condition, body) in branches where try located(line, { try evaluate(condition).isTruthy }) {
                    try run(body)
                    taken = true
                    break
                }
                if !taken { try run(otherwise) }
            case .assign(let targets, let attribute, let value, let line):
                try located(line) {
                    let result = try evaluate(value)
                    if let attribute {
                        guard case .namespace(let namespace) = lookup(targets[0]) else {
                            throw TemplateError("'\(targets[0])' is not a namespace; only a namespace's attributes can be set")
                        }
                        namespace.attributes[attribute] = result
                    } else if targets.count == 1 {
                        assign(targets[0], result)
                    } else {
                        let items = try JinjaBuiltins.iterate(result)
                        guard items.count == targets.count else { throw TemplateError("cannot unpack \(items.count) values into \(targets.count) names") }
                        for (name, item) in zip(targets, items) { assign(name, item) }
                    }
                }
            case .capture(let name, let body):
                let saved = output
                output = ""
                try run(body)
                let captured = output
                output = saved
                assign(name, .string(captured))
            case .macro(let name, let parameters, let body):
                assign(name, macro(parameters, body))
            case .loopControl(let isBreak, let line):
                guard scopes.count > 1 else { throw TemplateError(line: line, "'\(isBreak ? "break" : "continue")' outside a loop") }
                pendingLoopControl = isBreak
            }
        }
    }

    /// Runs `body`, adding the line to an error that has none.
    private func located<T>(_ line: Int, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as TemplateError where !error.message.hasPrefix("chat template line") {
            throw TemplateError(line: line, String(error.message.dropFirst("chat template: ".count)), raised: error.raisedMessage)
        }
    }

    private func forLoop(_ targets: [String], _ iterable: JinjaExpression, _ filter: JinjaExpression?, _ body: [JinjaNode],
                         _ otherwise: [JinjaNode], line: Int) throws {
        var items = try located(line) { () -> [JinjaValue] in
            let value = try evaluate(iterable)
            if case .object(let object) = value { return object.keys.map { .string($0) } }
            return try JinjaBuiltins.iterate(value)
        }
        if let filter {
            items = try items.filter { item in
                scopes.append([:])
                defer { scopes.removeLast() }
                try bind(targets, item, line: line)
                return try located(line) { try evaluate(filter).isTruthy }
            }
        }
        if items.isEmpty { return try run(otherwise) }
        for (index, item) in items.enumerated() {
            budget -= 1
            guard budget > 0 else { throw TemplateError(line: line, "the template runs more than 10 million loop iterations") }
            let loop = JinjaObject([("index", .int(index + 1)), ("index0", .int(index)), ("first", .bool(index == 0)),
                                    ("last", .bool(index == items.count - 1)), ("length", .int(items.count)),
                                    ("revindex", .int(items.count - index)), ("revindex0", .int(items.count - index - 1)),
                                    ("previtem", index > 0 ? items[index - 1] : .undefined),
                                    ("nextitem", index + 1 < items.count ? items[index + 1] : .undefined)])
            scopes.append(["loop": .object(loop)])
            defer { scopes.removeLast() }
            try bind(targets, item, line: line)
            try run(body)
            if let isBreak = pendingLoopControl {
                pendingLoopControl = nil
                if isBreak { break }
            }
        }
    }

    private func bind(_ targets: [String], _ item: JinjaValue, line: Int) throws {
        guard targets.count > 1 else { return assign(targets[0], item) }
        let parts = try JinjaBuiltins.iterate(item)
        guard parts.count == targets.count else {
            throw TemplateError(line: line, "cannot unpack \(parts.count) values into \(targets.count) loop variables")
        }
        for (name, part) in zip(targets, parts) { assign(name, part) }
    }

    private func macro(_ parameters: [(String, JinjaExpression?)], _ body: [JinjaNode]) -> JinjaValue {
        .function { [unowned self] positional, keywords in
            var scope: [String: JinjaValue] = [:]
            for (index, (name, fallback)) in parameters.enumerated() {
                if index < positional.count { scope[name] = positional[index] }
                else if let value = keywords[name] { scope[name] = value }
                else { scope[name] = try fallback.map { try self.evaluate($0) } ?? .undefined }
            }
            guard self.macroDepth < Self.maximumMacroDepth else { throw TemplateError("macros call each other deeper than \(Self.maximumMacroDepth) levels") }
            let saved = self.output
            self.output = ""
            self.scopes.append(scope)
            self.macroDepth += 1
            defer {
                self.scopes.removeLast()
                self.output = saved
                self.macroDepth -= 1
            }
            try self.run(body)
            return .string(self.output)
        }
    }

    // MARK: - Expressions

    func evaluate(_ expression: JinjaExpression) throws -> JinjaValue {
        switch expression {
        case .literal(let value): return value
        case .variable(let name): return lookup(name)
        case .list(let items): return try limitingNesting(.array(try items.map(evaluate)))
        case .dictionary(let pairs):
            let object = JinjaObject()
            for (key, value) in pairs {
                guard case .string(let name) = try evaluate(key) else { throw TemplateError("dictionary keys must be strings") }
                object[name] = try evaluate(value)
            }
            return try limitingNesting(.object(object))
        case .attribute(let base, let name):
            return try JinjaBuiltins.attribute(try evaluate(base), name)
        case .index(let base, let index):
            return try JinjaBuiltins.element(try evaluate(base), try evaluate(index))
        case .slice(let base, let start, let stop, let step):
            return try JinjaBuiltins.slice(try evaluate(base), try start.map(evaluate), try stop.map(evaluate), try step.map(evaluate))
        case .call(let callee, let arguments):
            let function = try evaluate(callee)
            guard case .function(let body) = function else {
                if case .variable(let name) = callee { throw TemplateError("'\(name)' is not a function this interpreter knows") }
                throw TemplateError("a \(function.kind) is not callable")
            }
            let (positional, keywords) = try evaluate(arguments)
            return try body(positional, keywords)
        case .filter(let base, let name, let arguments):
            let (positional, keywords) = try evaluate(arguments)
            return try JinjaBuiltins.filter(name, try evaluate(base), positional, keywords)
        case .test(let base, let name, let arguments, let negated):
            let (positional, _) = try evaluate(arguments)
            return .bool(try JinjaBuiltins.test(name, try evaluate(base), positional) != negated)
        case .unary(let symbol, let operand):
            let value = try evaluate(operand)
            if symbol == "not" { return .bool(!value.isTruthy) }
            switch value {
            case .int(let number): return .int(-number)
            case .double(let number): return .double(-number)
            default: throw TemplateError("cannot negate a \(value.kind)")
            }
        case .binary("and", let left, let right):
            let value = try evaluate(left)
            return value.isTruthy ? try evaluate(right) : value
        case .binary("or", let left, let right):
            let value = try evaluate(left)
            return value.isTruthy ? value : try evaluate(right)
        case .binary(let symbol, let left, let right):
            return try JinjaBuiltins.binary(symbol, try evaluate(left), try evaluate(right))
        case .conditional(let condition, let then, let otherwise):
            return try evaluate(condition).isTruthy ? try evaluate(then) : try otherwise.map(evaluate) ?? .undefined
        }
    }

    /// `value`, a list or dictionary just built, once it is known to nest no deeper than
    /// ``maximumNesting``. The walk (without recursion) is work counted against the budget.
    private func limitingNesting(_ value: JinjaValue) throws -> JinjaValue {
        var pending: [(value: JinjaValue, level: Int)] = [(value, 1)]
        while let (current, level) = pending.popLast() {
            let children: [JinjaValue] = switch current {
            case .array(let items): items
            case .object(let object): object.pairs.map(\.value)
            default: []
            }
            guard !children.isEmpty else { continue }
            guard level < Self.maximumNesting else {
                throw TemplateError("the template builds lists or dictionaries nested deeper than \(Self.maximumNesting) levels")
            }
            budget -= children.count
            guard budget > 0 else { throw TemplateError("the template does more than 10 million steps of work") }
            for child in children {
                switch child {
                case .array, .object: pending.append((child, level + 1))
                default: break
                }
            }
        }
        return value
    }

    private func evaluate(_ arguments: JinjaArguments) throws -> ([JinjaValue], [String: JinjaValue]) {
        var keywords: [String: JinjaValue] = [:]
        for (name, value) in arguments.keywords { keywords[name] = try evaluate(value) }
        return (try arguments.positional.map(evaluate), keywords)
    }
}
