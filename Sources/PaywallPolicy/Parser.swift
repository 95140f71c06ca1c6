import Foundation
import PaywallCore

/// Recursive-descent parser for policy files. Every error points at its lexeme.
struct Parser {
    var lexemes: [Lexeme]
    var position = 0
    let lexer: Lexer
    let source: [UInt8]
    var ruleOrder: Int
    /// Nesting depth of expressions, bounded so hostile input cannot exhaust the stack.
    var depth = 0
    static let maximumDepth = 64

    init(file: String, source: String, firstRuleOrder: Int = 0) throws(PolicyDiagnostic) {
        var lexer = Lexer(file: file, source: source)
        lexemes = try lexer.scan()
        self.lexer = Lexer(file: file, source: source)
        self.source = Array(source.utf8)
        ruleOrder = firstRuleOrder
    }

    // MARK: - Lexeme access

    var current: Lexeme { lexemes[position] }

    mutating func advance() -> Lexeme {
        let lexeme = lexemes[position]
        if position < lexemes.count - 1 { position += 1 }
        return lexeme
    }

    func error(_ message: String, at lexeme: Lexeme? = nil) -> PolicyDiagnostic {
        let lexeme = lexeme ?? current
        return PolicyDiagnostic(at: lexeme.location, message, sourceLine: lexer.sourceLine(lexeme.location.line))
    }

    mutating func skipNewlines() {
        while current.kind == .newline || current.kind == .symbol(";") { _ = advance() }
    }

    func describe(_ kind: LexemeKind) -> String {
        switch kind {
        case let .identifier(name): "'\(name)'"
        case let .string(text): "\"\(text)\""
        case let .number(value): "\(value)"
        case let .symbol(symbol): "'\(symbol)'"
        case .newline: "end of line"
        case .end: "end of file"
        }
    }

    mutating func expectSymbol(_ symbol: String, _ context: String) throws(PolicyDiagnostic) {
        guard current.kind == .symbol(symbol) else { throw error("expected '\(symbol)' \(context), found \(describe(current.kind))") }
        _ = advance()
    }

    mutating func expectKeyword(_ word: String, _ context: String) throws(PolicyDiagnostic) {
        guard current.kind == .identifier(word) else { throw error("expected '\(word)' \(context), found \(describe(current.kind))") }
        _ = advance()
    }

    mutating func expectString(_ context: String) throws(PolicyDiagnostic) -> String {
        guard case let .string(text) = current.kind else { throw error("expected a quoted name \(context), found \(describe(current.kind))") }
        _ = advance()
        return text
    }

    mutating func expectNumber(_ context: String) throws(PolicyDiagnostic) -> Double {
        guard case let .number(value) = current.kind else { throw error("expected a number \(context), found \(describe(current.kind))") }
        _ = advance()
        return value
    }

    /// Ends a statement: `;`, a line break, or the block's closing brace.
    mutating func endStatement() throws(PolicyDiagnostic) {
        switch current.kind {
        case .newline, .symbol(";"): skipNewlines()
        case .symbol("}"): break
        case .end: throw error("expected '}' to close the block before the end of the file")
        default: throw error("expected the end of the statement, found \(describe(current.kind))")
        }
    }

    // MARK: - File

    mutating func parseFile() throws(PolicyDiagnostic) -> PolicyFileAST {
        var file = PolicyFileAST(file: lexer.file, source: String(decoding: source, as: UTF8.self))
        skipNewlines()
        while current.kind != .end {
            let start = current
            guard case let .identifier(word) = start.kind else {
                throw error("expected 'rule', 'meter', 'defaults' or 'title', found \(describe(start.kind))")
            }
            _ = advance()
            switch word {
            case "meter": file.meters.append(try parseMeter(start))
            case "defaults": file.defaults.append(try parseSettingsBlock(start, context: "defaults"))
            case "rule": file.rules.append(try parseRule(start, title: nil))
            case "title": try parseTitle(start, into: &file)
            default:
                throw error("unknown declaration '\(word)'; expected 'rule', 'meter', 'defaults' or 'title'\(suggestion(word, ["rule", "meter", "defaults", "title"]))", at: start)
            }
            skipNewlines()
        }
        return file
    }

    mutating func parseMeter(_ start: Lexeme) throws(PolicyDiagnostic) -> MeterDecl {
        let name = try expectString("after 'meter'")
        try expectSymbol("{", "after the meter's name")
        skipNewlines()
        try expectKeyword("limit", "in a meter (e.g. limit 3 per 30 days)")
        let limitLexeme = current
        let limit = try expectNumber("after 'limit'")
        guard limit >= 0, limit <= 1_000_000, limit.rounded() == limit else { throw error("a meter's limit must be a whole number from 0 to 1000000", at: limitLexeme) }
        try expectKeyword("per", "after the limit (e.g. limit 3 per 30 days)")
        let windowLexeme = current
        let window = try parseDurationLiteral()
        // Reads are stored to the millisecond: a window shorter than a second (0.0001
        // seconds) counted none of them, a meter that never ran out.
        guard window >= 1 else { throw error("a meter's window must be at least 1 second", at: windowLexeme) }
        skipNewlines()
        try expectSymbol("}", "to close the meter")
        return MeterDecl(name: name, limit: Int(limit), window: window, location: start.location)
    }

    mutating func parseSettingsBlock(_ start: Lexeme, context: String) throws(PolicyDiagnostic) -> SettingsDecl {
        try expectSymbol("{", "after '\(context)'")
        var settings = SettingsDecl(location: start.location)
        skipNewlines()
        while current.kind != .symbol("}") {
            try parseSetting(into: &settings)
            try endStatement()
        }
        _ = advance()
        return settings
    }

    mutating func parseSetting(into settings: inout SettingsDecl) throws(PolicyDiagnostic) {
        let lexeme = current
        guard case let .identifier(word) = lexeme.kind else { throw error("expected 'access' or 'teaser', found \(describe(lexeme.kind))") }
        _ = advance()
        switch word {
        case "access":
            settings.access = try parseLevel()
        case "teaser":
            let countLexeme = current
            let count = try expectNumber("after 'teaser' (e.g. teaser 3 paragraphs)")
            guard count >= 0, count <= 100, count.rounded() == count else { throw error("a teaser is 0 to 100 whole paragraphs", at: countLexeme) }
            guard current.kind == .identifier("paragraphs") || current.kind == .identifier("paragraph") else {
                throw error("expected 'paragraphs' after the teaser length")
            }
            _ = advance()
            settings.teaserParagraphs = Int(count)
        default:
            throw error("unknown setting '\(word)'; expected 'access' or 'teaser'\(suggestion(word, ["access", "teaser"]))", at: lexeme)
        }
    }

    mutating func parseLevel() throws(PolicyDiagnostic) -> AccessLevel {
        guard case let .identifier(word) = current.kind, let level = AccessLevel(name: word) else {
            var hint = ""
            if case let .identifier(word) = current.kind, let near = closest(word, in: ["none", "teaser", "full"]) { hint = "; did you mean '\(near)'?" }
            throw error("expected an access level: none, teaser or full; found \(describe(current.kind))\(hint)")
        }
        _ = advance()
        return level
    }

    mutating func parseTitle(_ start: Lexeme, into file: inout PolicyFileAST) throws(PolicyDiagnostic) {
        let id = try expectString("after 'title'")
        try expectSymbol("{", "after the title's id")
        var settings = SettingsDecl(location: start.location)
        skipNewlines()
        while current.kind != .symbol("}") {
            if current.kind == .identifier("rule") {
                let ruleLexeme = advance()
                file.rules.append(try parseRule(ruleLexeme, title: id))
                skipNewlines()
            } else {
                try parseSetting(into: &settings)
                try endStatement()
            }
            if current.kind == .end { throw error("expected '}' to close title \"\(id)\"") }
        }
        _ = advance()
        file.titles.append(TitleDecl(id: id, settings: settings, location: start.location))
    }

    mutating func parseRule(_ start: Lexeme, title: String?) throws(PolicyDiagnostic) -> RuleDecl {
        let name = try expectString("after 'rule'")
        var shadow = false
        if current.kind == .identifier("shadow") {
            shadow = true
            _ = advance()
        }
        try expectSymbol("{", "after the rule's name")
        var rule = RuleDecl(name: name, shadow: shadow, conjuncts: [], effects: [], location: start.location, title: title, order: ruleOrder)
        ruleOrder += 1
        var sawWhen = false
        skipNewlines()
        while current.kind != .symbol("}") {
            let lexeme = current
            guard case let .identifier(word) = lexeme.kind else { throw error("expected 'when', 'grant', 'cap' or 'offer', found \(describe(lexeme.kind))") }
            _ = advance()
            switch word {
            case "when":
                if sawWhen { throw error("a rule has one 'when'; combine conditions with 'and'", at: lexeme) }
                sawWhen = true
                let expression = try parseExpression()
                rule.conjuncts = conjuncts(of: expression)
            case "grant":
                let level = try parseLevel()
                var meter: String?
                if current.kind == .identifier("using") {
                    _ = advance()
                    try expectKeyword("meter", "after 'using'")
                    meter = try expectString("naming the meter")
                }
                rule.effects.append(.grant(level, meter: meter, lexeme.location))
            case "cap":
                rule.effects.append(.cap(try parseLevel(), lexeme.location))
            case "offer":
                var offers: [Offer] = [try parseOffer()]
                while current.kind == .symbol(",") {
                    _ = advance()
                    offers.append(try parseOffer())
                }
                rule.effects.append(.offer(offers, lexeme.location))
            default:
                throw error("unknown statement '\(word)'; expected 'when', 'grant', 'cap' or 'offer'\(suggestion(word, ["when", "grant", "cap", "offer"]))", at: lexeme)
            }
            try endStatement()
            if current.kind == .end { throw error("expected '}' to close rule \"\(name)\"") }
        }
        _ = advance()
        if rule.effects.isEmpty { throw error("rule \"\(name)\" has no effect: add 'grant', 'cap' or 'offer'", at: start) }
        return rule
    }

    mutating func parseOffer() throws(PolicyDiagnostic) -> Offer {
        let lexeme = current
        guard case let .identifier(word) = lexeme.kind else { throw error("expected an offer: trial N days, signIn, signUp or subscribe") }
        _ = advance()
        switch word {
        case "signIn": return .signIn
        case "signUp": return .signUp
        case "subscribe": return .subscribe
        case "trial":
            let durationLexeme = current
            let seconds = try parseDurationLiteral()
            let days = seconds / 86_400
            guard days >= 1, days <= 366, days.rounded() == days else { throw error("a trial lasts 1 to 366 whole days", at: durationLexeme) }
            return .trial(days: Int(days))
        default:
            throw error("unknown offer '\(word)'; expected trial N days, signIn, signUp or subscribe\(suggestion(word, ["trial", "signIn", "signUp", "subscribe"]))", at: lexeme)
        }
    }

    static let units: [String: Double] = [
        "second": 1, "seconds": 1, "minute": 60, "minutes": 60, "hour": 3_600, "hours": 3_600,
        "day": 86_400, "days": 86_400, "week": 604_800, "weeks": 604_800,
    ]

    /// The longest duration a policy may write: 100 years of 366 days, as the command line
    /// accepts. Longer ones would overflow millisecond timestamps downstream (a meter window
    /// is subtracted from now).
    static let maximumDuration: Double = TimeText.maximumDuration

    mutating func parseDurationLiteral() throws(PolicyDiagnostic) -> Double {
        let numberLexeme = current
        let value = try expectNumber("for a duration (e.g. 30 days)")
        guard case let .identifier(unit) = current.kind, let seconds = Self.units[unit] else {
            throw error("expected a unit after \(value): seconds, minutes, hours, days or weeks")
        }
        _ = advance()
        return try checkedDuration(value * seconds, at: numberLexeme)
    }

    func checkedDuration(_ seconds: Double, at lexeme: Lexeme) throws(PolicyDiagnostic) -> Double {
        guard seconds <= Self.maximumDuration else {
            throw error("a duration may not be longer than 100 years (\(Int(Self.maximumDuration / 86_400)) days)", at: lexeme)
        }
        return seconds
    }

    // MARK: - Expressions

    func text(from start: Int, to end: Int) -> String {
        String(decoding: source[max(0, start)..<min(end, source.count)], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The end offset of the lexeme before the current one.
    var previousEnd: Int {
        guard position > 0 else { return 0 }
        let next = lexemes[position].offset
        var end = next
        while end > 0, [0x20, 0x09, 0x0A, 0x0D].contains(source[end - 1]) { end -= 1 }
        return end
    }

    /// Splits a condition at top-level `and`s, keeping each part's source text.
    func conjuncts(of expression: Expression) -> [Conjunct] {
        conjunctParts.isEmpty ? [Conjunct(expression: expression, text: "")] : conjunctParts
    }

    var conjunctParts: [Conjunct] = []

    mutating func parseExpression() throws(PolicyDiagnostic) -> Expression {
        conjunctParts = []
        let expression = try parseOr(topLevel: true)
        return expression
    }

    /// A line break is allowed before `and` / `or`, continuing the condition (and after
    /// them: a condition cannot end with one, so the line break there cannot end it).
    mutating func continuation(_ word: String) -> Bool {
        if current.kind == .identifier(word) { return true }
        var look = position
        while lexemes[look].kind == .newline { look += 1 }
        if look != position, lexemes[look].kind == .identifier(word) {
            position = look
            return true
        }
        return false
    }

    /// After a line-ending `and` / `or`, the condition goes on on the next line, unless
    /// that line starts the rule's next statement or closes it: then the operand is missing
    /// and the error points at the end of the operator's line.
    mutating func skipLineBreakAfterOperator() {
        var look = position
        while lexemes[look].kind == .newline { look += 1 }
        guard look != position else { return }
        switch lexemes[look].kind {
        case .identifier("when"), .identifier("grant"), .identifier("cap"), .identifier("offer"), .symbol("}"), .end: return
        default: position = look
        }
    }

    /// `a or b or …`: parsed in a loop into one flat node (a chain of any length uses
    /// constant stack).
    mutating func parseOr(topLevel: Bool = false) throws(PolicyDiagnostic) -> Expression {
        let startOffset = current.offset
        var operands = [try parseAnd(topLevel: topLevel)]
        var operators: [SourceLocation] = []
        while continuation("or") {
            operators.append(advance().location)
            skipLineBreakAfterOperator()
            operands.append(try parseAnd(topLevel: false))
        }
        guard !operators.isEmpty else { return operands[0] }
        let expression = Expression.chain(.or, operands, operators: operators)
        if topLevel {
            // A top-level `or` is one conjunct.
            conjunctParts = [Conjunct(expression: expression, text: text(from: startOffset, to: previousEnd))]
        }
        return expression
    }

    /// `a and b and …`: one flat node. At the top level each operand is also kept, with
    /// its source text, as a conjunct (explanations quote the first false one).
    mutating func parseAnd(topLevel: Bool) throws(PolicyDiagnostic) -> Expression {
        var partStart = current.offset
        var operands = [try parseNot()]
        var operators: [SourceLocation] = []
        var parts: [Conjunct] = []
        if topLevel { parts.append(Conjunct(expression: operands[0], text: text(from: partStart, to: previousEnd))) }
        while continuation("and") {
            operators.append(advance().location)
            skipLineBreakAfterOperator()
            partStart = current.offset
            let operand = try parseNot()
            operands.append(operand)
            if topLevel { parts.append(Conjunct(expression: operand, text: text(from: partStart, to: previousEnd))) }
        }
        if topLevel { conjunctParts = parts }
        return operators.isEmpty ? operands[0] : .chain(.and, operands, operators: operators)
    }

    mutating func parseNot() throws(PolicyDiagnostic) -> Expression {
        if current.kind == .identifier("not") {
            let lexeme = advance()
            return .not(try nested { (p: inout Parser) throws(PolicyDiagnostic) in try p.parseNot() }, lexeme.location)
        }
        return try parseComparison()
    }

    mutating func nested(_ body: (inout Parser) throws(PolicyDiagnostic) -> Expression) throws(PolicyDiagnostic) -> Expression {
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maximumDepth { throw error("expression nested deeper than \(Self.maximumDepth) levels") }
        return try body(&self)
    }

    static let comparisons: Set<String> = ["==", "!=", "<", "<=", ">", ">="]

    mutating func parseComparison() throws(PolicyDiagnostic) -> Expression {
        let left = try parseAdditive()
        if case let .symbol(symbol) = current.kind, Self.comparisons.contains(symbol) {
            let lexeme = advance()
            let right = try parseAdditive()
            if case let .symbol(next) = current.kind, Self.comparisons.contains(next) {
                throw error("comparisons do not chain; use 'and'")
            }
            return .binary(symbol, left, right, lexeme.location)
        }
        if current.kind == .identifier("in") {
            let lexeme = advance()
            return .binary("in", left, try parseAdditive(), lexeme.location)
        }
        return left
    }

    /// `a + b - c …`: one flat node.
    mutating func parseAdditive() throws(PolicyDiagnostic) -> Expression {
        let first = try parsePrimary()
        var terms: [SumTerm] = []
        while current.kind == .symbol("+") || current.kind == .symbol("-") {
            let lexeme = advance()
            terms.append(SumTerm(subtract: lexeme.kind == .symbol("-"), operand: try parsePrimary(), location: lexeme.location))
        }
        return terms.isEmpty ? first : .sum(first, terms)
    }

    /// A value, an attribute or a parenthesized condition. Each kind has its own function:
    /// only `(…)` recurses, and its frames stay small, so the deepest nesting allowed fits
    /// a small thread stack even in debug builds.
    mutating func parsePrimary() throws(PolicyDiagnostic) -> Expression {
        switch current.kind {
        case .symbol("("): return try parseParenthesized()
        case .symbol("["): return try parseSet()
        case .identifier: return try parseWord()
        default: return try parseLiteral()
        }
    }

    mutating func parseParenthesized() throws(PolicyDiagnostic) -> Expression {
        _ = advance()
        let inner = try nested { (p: inout Parser) throws(PolicyDiagnostic) in
            p.skipNewlines()
            let saved = p.conjunctParts
            let expression = try p.parseOr()
            p.conjunctParts = saved
            p.skipNewlines()
            return expression
        }
        try expectSymbol(")", "to close '('")
        return inner
    }

    mutating func parseSet() throws(PolicyDiagnostic) -> Expression {
        let lexeme = advance()
        var elements: [Expression] = []
        skipNewlines()
        while current.kind != .symbol("]") {
            elements.append(try nested { (p: inout Parser) throws(PolicyDiagnostic) in try p.parseAdditive() })
            skipNewlines()
            if current.kind == .symbol(",") {
                _ = advance()
                skipNewlines()
            } else if current.kind != .symbol("]") {
                throw error("expected ',' or ']' in a set, found \(describe(current.kind))")
            }
            if elements.count > 10_000 { throw error("set literal with more than 10000 elements") }
        }
        _ = advance()
        return .set(elements, lexeme.location)
    }

    mutating func parseLiteral() throws(PolicyDiagnostic) -> Expression {
        let lexeme = current
        switch lexeme.kind {
        case let .string(text):
            _ = advance()
            return .string(text, lexeme.location)
        case let .number(value):
            _ = advance()
            if case let .identifier(unit) = current.kind, let seconds = Self.units[unit] {
                _ = advance()
                return .duration(try checkedDuration(value * seconds, at: lexeme), lexeme.location)
            }
            return .number(value, lexeme.location)
        case .symbol("-"):
            _ = advance()
            guard case let .number(value) = current.kind else { throw error("expected a number after '-'") }
            _ = advance()
            if case let .identifier(unit) = current.kind, Self.units[unit] != nil {
                throw error("a duration cannot be negative ('-\(Self.format(value)) \(unit)'): subtract the other way round and flip the comparison", at: lexeme)
            }
            return .number(-value, lexeme.location)
        default:
            throw error("expected a value or an attribute, found \(describe(lexeme.kind))")
        }
    }

    /// A number as written in a policy: `7`, not `7.0`.
    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// `true`, `false`, `time(…)`, `cidr(…)`, `ip(…)`, `meter(…).field` or an attribute path.
    mutating func parseWord() throws(PolicyDiagnostic) -> Expression {
        let lexeme = advance()
        guard case let .identifier(word) = lexeme.kind else { throw error("expected a value or an attribute, found \(describe(lexeme.kind))", at: lexeme) }
        switch word {
        case "true": return .bool(true, lexeme.location)
        case "false": return .bool(false, lexeme.location)
        case "time", "cidr", "ip":
            try expectSymbol("(", "after '\(word)'")
            guard case let .string(argument) = current.kind else { throw error("\(word)(…) takes a quoted string") }
            let argumentLexeme = advance()
            try expectSymbol(")", "to close \(word)(…)")
            return .call(word, [.string(argument, argumentLexeme.location)], lexeme.location)
        case "meter":
            try expectSymbol("(", "after 'meter' (e.g. meter(\"free-articles\").remaining)")
            let name = try expectString("naming the meter")
            try expectSymbol(")", "to close meter(…)")
            try expectSymbol(".", "after meter(…): .used, .remaining or .limit")
            guard case let .identifier(field) = current.kind else { throw error("expected used, remaining or limit after 'meter(…).'") }
            _ = advance()
            return .meter(name, field, lexeme.location)
        default:
            var path = [word]
            while current.kind == .symbol(".") {
                _ = advance()
                guard case let .identifier(part) = current.kind else { throw error("expected an attribute name after '.'") }
                _ = advance()
                path.append(part)
                if path.count > 4 { throw error("attribute path too long") }
            }
            return .attribute(path, lexeme.location)
        }
    }

    func suggestion(_ word: String, _ candidates: [String]) -> String {
        closest(word, in: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }
}

/// The candidate closest to `word` by edit distance, if close enough to be a typo.
func closest(_ word: String, in candidates: [String]) -> String? {
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(word.lowercased(), candidate.lowercased())
        if distance <= max(2, candidate.count / 3), distance < (best?.1 ?? .max) { best = (candidate, distance) }
    }
    return best?.0
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
