import Foundation

/// The facts of one decision, passed by address: a by-value parameter to a stored closure
/// would copy the whole struct at every call.
typealias FactsPointer = UnsafePointer<DecisionFacts>

/// A typed, compiled expression: a closure over the facts, and whether it is constant.
enum Compiled {
    case bool(@Sendable (FactsPointer) -> Bool)
    case number(@Sendable (FactsPointer) -> Double)
    case string(@Sendable (FactsPointer) -> String)
    case duration(@Sendable (FactsPointer) -> Double)
    case time(@Sendable (FactsPointer) -> Double)
    case ip(@Sendable (FactsPointer) -> IPAddress?)
    case cidr(CIDR)
    case stringSet(@Sendable (FactsPointer) -> Set<String>)
    case numberSet(Set<Double>)
    case cidrSet([CIDR])
    case emptySet

    var type: PolicyType {
        switch self {
        case .bool: .bool
        case .number: .number
        case .string: .string
        case .duration: .duration
        case .time: .time
        case .ip: .ip
        case .cidr: .cidr
        case .stringSet: .stringSet
        case .numberSet: .numberSet
        case .cidrSet: .cidrSet
        case .emptySet: .emptySet
        }
    }
}

/// Type-checks expressions against the schema and compiles them to closures.
struct ExpressionCompiler {
    let meters: [String: Int]
    let meterLimits: [Int]
    let sourceLines: (SourceLocation) -> String
    /// Attribute roots the expression reads (user, membership, …).
    var roots: Set<String> = []
    var constant = true

    func error(_ message: String, at location: SourceLocation) -> PolicyDiagnostic {
        PolicyDiagnostic(at: location, message, sourceLine: sourceLines(location))
    }

    mutating func compileCondition(_ expression: Expression) throws(PolicyDiagnostic) -> @Sendable (FactsPointer) -> Bool {
        let compiled = try compile(expression)
        guard case let .bool(function) = compiled else {
            throw error("a condition must be true or false, not a \(compiled.type)", at: expression.location)
        }
        return function
    }

    mutating func compile(_ expression: Expression) throws(PolicyDiagnostic) -> Compiled {
        switch expression {
        case let .bool(value, _): return .bool { _ in value }
        case let .number(value, _): return .number { _ in value }
        case let .string(value, _): return .string { _ in value }
        case let .duration(value, _): return .duration { _ in value }
        case let .set(elements, location):
            return try compileSet(elements, location)
        case let .call(name, arguments, location):
            guard case let .string(text, _)? = arguments.first else { throw error("\(name)(…) takes a quoted string", at: location) }
            switch name {
            case "time":
                guard let date = ISO8601DateFormatter().date(from: text) else {
                    throw error("time(\"\(text)\") is not an ISO 8601 instant such as 2026-01-01T00:00:00Z", at: location)
                }
                let seconds = date.timeIntervalSince1970
                return .time { _ in seconds }
            case "cidr":
                guard let range = CIDR(text) else { throw error("cidr(\"\(text)\") is not an address range such as 203.0.113.0/24 or 2001:db8::/32", at: location) }
                return .cidr(range)
            default:
                guard let address = IPAddress(text) else { throw error("ip(\"\(text)\") is not an IPv4 or IPv6 address", at: location) }
                return .ip { _ in address }
            }
        case let .meter(name, field, location):
            constant = false
            roots.insert("meter")
            guard let index = meters[name] else {
                throw error("unknown meter \"\(name)\"\(closest(name, in: Array(meters.keys)).map { "; did you mean \"\($0)\"?" } ?? "; declare it with meter \"\(name)\" { limit N per D days }")", at: location)
            }
            let limitCount = meterLimits[index]
            let limit = Double(limitCount)
            // Facts without this meter, or with an impossible count, fail closed: used up.
            switch field {
            case "used": return .number { Double($0.pointee.meterState(index, limit: limitCount).used) }
            case "limit": return .number { _ in limit }
            case "remaining": return .number { max(0, limit - Double($0.pointee.meterState(index, limit: limitCount).used)) }
            default:
                throw error("meters have used, remaining and limit, not '\(field)'\(closest(field, in: Schema.meterFields).map { "; did you mean '\($0)'?" } ?? "")", at: location)
            }
        case let .attribute(path, location):
            return try compileAttribute(path, location)
        case let .not(inner, location):
            let compiled = try compile(inner)
            guard case let .bool(function) = compiled else { throw error("'not' needs true or false, not a \(compiled.type)", at: location) }
            return .bool { !function($0) }
        case let .binary(op, left, right, location):
            return try compileBinary(op, left, right, location)
        case let .chain(connective, operands, operators):
            return try compileChain(connective, operands, operators)
        case let .sum(first, terms):
            return try compileSum(first, terms)
        }
    }

    /// `a and b and …` / `a or b or …`: the operands' closures in one array, evaluated in a
    /// loop (a nested closure per operand would recurse per operand when evaluated).
    mutating func compileChain(_ connective: Connective, _ operandExpressions: [Expression], _ operators: [SourceLocation]) throws(PolicyDiagnostic) -> Compiled {
        var compiled: [Compiled] = []
        compiled.reserveCapacity(operandExpressions.count)
        for operand in operandExpressions { compiled.append(try compile(operand)) }
        var collected: [@Sendable (FactsPointer) -> Bool] = []
        collected.reserveCapacity(compiled.count)
        for (index, operand) in compiled.enumerated() {
            guard case let .bool(test) = operand else {
                // The operator next to the offending operand, and the pair it joins.
                let left = index == 0 ? 0 : index - 1
                let right = min(left + 1, compiled.count - 1)
                let location = operators.isEmpty ? operandExpressions[index].location : operators[min(left, operators.count - 1)]
                throw error("'\(connective.rawValue)' needs true or false on both sides, not a \(compiled[left].type) and a \(compiled[right].type)", at: location)
            }
            collected.append(test)
        }
        let tests = collected
        switch (connective, tests.count) {
        case (_, 0): return .bool { _ in connective == .and }
        case (_, 1): return .bool(tests[0])
        case (.and, 2):
            let a = tests[0], b = tests[1]
            return .bool { a($0) && b($0) }
        case (.or, 2):
            let a = tests[0], b = tests[1]
            return .bool { a($0) || b($0) }
        case (.and, _):
            return .bool { facts in
                for test in tests where !test(facts) { return false }
                return true
            }
        case (.or, _):
            return .bool { facts in
                for test in tests where test(facts) { return true }
                return false
            }
        }
    }

    /// `a + b - c …`: numbers, durations and times are all seconds (or plain numbers), so a
    /// sum is the signed operands added in a loop; its type is folded here, left to right.
    mutating func compileSum(_ firstExpression: Expression, _ terms: [SumTerm]) throws(PolicyDiagnostic) -> Compiled {
        let first = try compile(firstExpression)
        guard let (firstValue, firstType) = Self.scalar(first) else {
            guard let term = terms.first else { return first }
            let operand = try compile(term.operand)
            throw error("cannot \(term.subtract ? "subtract" : "add") a \(first.type) and a \(operand.type)", at: term.location)
        }
        var type = firstType
        var values: [@Sendable (FactsPointer) -> Double] = [firstValue]
        var signs: [Double] = [1]
        values.reserveCapacity(terms.count + 1)
        signs.reserveCapacity(terms.count + 1)
        for term in terms {
            let operand = try compile(term.operand)
            let scalar = Self.scalar(operand)
            let result: PolicyType?
            switch (type, scalar?.1, term.subtract) {
            case (.time, .duration, _): result = .time
            case (.duration, .time, false): result = .time
            case (.time, .time, true): result = .duration
            case (.duration, .duration, _): result = .duration
            case (.number, .number, _): result = .number
            default: result = nil
            }
            guard let result, let (value, _) = scalar else {
                throw error("cannot \(term.subtract ? "subtract" : "add") a \(type) and a \(operand.type)", at: term.location)
            }
            type = result
            values.append(value)
            signs.append(term.subtract ? -1 : 1)
        }
        let sum: @Sendable (FactsPointer) -> Double
        if values.count == 2 {
            let a = values[0], b = values[1]
            if signs[1] < 0 {
                sum = { a($0) - b($0) }
            } else {
                sum = { a($0) + b($0) }
            }
        } else {
            let terms = zip(signs, values).map { SignedTerm(sign: $0, value: $1) }
            sum = { facts in
                var total = 0.0
                for term in terms { total += term.sign * term.value(facts) }
                return total
            }
        }
        switch type {
        case .time: return .time(sum)
        case .duration: return .duration(sum)
        default: return .number(sum)
        }
    }

    struct SignedTerm: Sendable {
        let sign: Double
        let value: @Sendable (FactsPointer) -> Double
    }

    /// The closure and type of a number, duration or time.
    static func scalar(_ compiled: Compiled) -> ((@Sendable (FactsPointer) -> Double), PolicyType)? {
        switch compiled {
        case let .number(f): (f, .number)
        case let .duration(f): (f, .duration)
        case let .time(f): (f, .time)
        default: nil
        }
    }

    mutating func compileSet(_ elements: [Expression], _ location: SourceLocation) throws(PolicyDiagnostic) -> Compiled {
        if elements.isEmpty { return .emptySet }
        var strings: Set<String> = [], numbers: Set<Double> = [], ranges: [CIDR] = []
        for element in elements {
            switch element {
            case let .string(value, _): strings.insert(value)
            case let .number(value, _): numbers.insert(value)
            case let .call("cidr", _, elementLocation):
                guard case let .cidr(range) = try compile(element) else { throw error("bad range", at: elementLocation) }
                ranges.append(range)
            default:
                throw error("set elements must be literals: strings, numbers or cidr(…)", at: element.location)
            }
        }
        let kinds = [!strings.isEmpty, !numbers.isEmpty, !ranges.isEmpty].filter { $0 }.count
        guard kinds == 1 else { throw error("a set holds one type of element", at: location) }
        if !strings.isEmpty {
            let constant = strings
            return .stringSet { _ in constant }
        }
        if !numbers.isEmpty { return .numberSet(numbers) }
        return .cidrSet(ranges)
    }

    mutating func compileAttribute(_ path: [String], _ location: SourceLocation) throws(PolicyDiagnostic) -> Compiled {
        let name = path.joined(separator: ".")
        guard Schema.attributes[name] != nil else {
            let hint = closest(name, in: Array(Schema.attributes.keys)).map { "; did you mean '\($0)'?" } ?? ""
            throw error("unknown attribute '\(name)'\(hint)", at: location)
        }
        if name != "now" {
            constant = false
            roots.insert(path[0])
        } else {
            constant = false
        }
        switch name {
        case "user.signedIn": return .bool { $0.pointee.user.signedIn }
        case "user.id": return .string { $0.pointee.user.id }
        case "user.emailDomain": return .string { $0.pointee.user.emailDomain }
        case "user.emailVerified": return .bool { $0.pointee.user.emailVerified }
        case "user.createdAt": return .time { $0.pointee.user.createdAt.timeIntervalSince1970 }
        case "membership.status": return .string { $0.pointee.membership.status }
        case "membership.active": return .bool { $0.pointee.membership.active }
        case "membership.entitled": return .bool { $0.pointee.membership.entitled }
        case "membership.plan": return .string { $0.pointee.membership.plan }
        case "membership.titles": return .stringSet { $0.pointee.membership.titles }
        case "membership.allTitles": return .bool { $0.pointee.membership.allTitles }
        case "membership.periodEnds": return .time { $0.pointee.membership.periodEnds.timeIntervalSince1970 }
        case "membership.graceEnds": return .time { $0.pointee.membership.graceEnds.timeIntervalSince1970 }
        case "trial.active": return .bool { $0.pointee.trial.active }
        case "trial.eligible": return .bool { $0.pointee.trial.eligible }
        case "trial.endsAt": return .time { $0.pointee.trial.endsAt.timeIntervalSince1970 }
        case "title.id": return .string { $0.pointee.title.id }
        case "title.publisher": return .string { $0.pointee.title.publisher }
        case "title.tags": return .stringSet { $0.pointee.title.tags }
        case "article.id": return .string { $0.pointee.article.id }
        case "article.free": return .bool { $0.pointee.article.free }
        case "article.publishedAt": return .time { $0.pointee.article.publishedAt.timeIntervalSince1970 }
        case "article.age": return .duration { $0.pointee.now.timeIntervalSince($0.pointee.article.publishedAt) }
        case "article.section": return .string { $0.pointee.article.section }
        case "article.tags": return .stringSet { $0.pointee.article.tags }
        case "request.ip": return .ip { $0.pointee.request.ip }
        case "request.country": return .string { $0.pointee.request.country }
        case "request.referrerHost": return .string { $0.pointee.request.referrerHost }
        case "request.channel": return .string { $0.pointee.request.channel }
        case "request.verifiedCrawler": return .bool { $0.pointee.request.verifiedCrawler }
        case "request.device": return .string { $0.pointee.request.device }
        default: return .time { $0.pointee.now.timeIntervalSince1970 }
        }
    }

    mutating func compileBinary(_ op: String, _ leftExpression: Expression, _ rightExpression: Expression, _ location: SourceLocation) throws(PolicyDiagnostic) -> Compiled {
        let left = try compile(leftExpression)
        let right = try compile(rightExpression)
        func mismatch(_ verb: String) -> PolicyDiagnostic {
            error("cannot \(verb) a \(left.type) and a \(right.type)", at: location)
        }
        switch op {
        case "==", "!=":
            try checkLiteral(leftExpression, rightExpression, location)
            let equal: @Sendable (FactsPointer) -> Bool
            switch (left, right) {
            case let (.bool(l), .bool(r)): equal = { l($0) == r($0) }
            case let (.number(l), .number(r)): equal = { l($0) == r($0) }
            case let (.string(l), .string(r)): equal = { l($0) == r($0) }
            case let (.duration(l), .duration(r)), let (.time(l), .time(r)): equal = { l($0) == r($0) }
            case let (.ip(l), .ip(r)):
                // A missing address compares false both ways (the README's rule): with `!=`
                // as `not ==`, a request without one passed `request.ip != ip("…")`.
                if op == "!=" { return .bool { facts in l(facts).map { a in r(facts).map { a != $0 } ?? false } ?? false } }
                equal = { l($0) != nil && l($0) == r($0) }
            default: throw mismatch("compare")
            }
            return op == "==" ? .bool(equal) : .bool { !equal($0) }
        case "<", "<=", ">", ">=":
            let l: @Sendable (FactsPointer) -> Double, r: @Sendable (FactsPointer) -> Double
            switch (left, right) {
            case let (.number(a), .number(b)), let (.duration(a), .duration(b)), let (.time(a), .time(b)):
                l = a
                r = b
            default: throw error("cannot order a \(left.type) and a \(right.type) with '\(op)'", at: location)
            }
            switch op {
            case "<": return .bool { l($0) < r($0) }
            case "<=": return .bool { l($0) <= r($0) }
            case ">": return .bool { l($0) > r($0) }
            default: return .bool { l($0) >= r($0) }
            }
        case "in":
            // `membership.status in ["activ"]` is the same typo as with `==`, and
            // `"Academic" in title.tags` as `title.id == "Le-Monde"`.
            if case let .set(elements, _) = rightExpression {
                for element in elements { try checkLiteral(leftExpression, element, location) }
            } else {
                try checkLiteral(rightExpression, leftExpression, location)
            }
            switch (left, right) {
            case let (.string(element), .stringSet(set)):
                if case let .string(literal, _) = leftExpression {
                    return .bool { set($0).contains(literal) }
                }
                return .bool { set($0).contains(element($0)) }
            case (.string, .emptySet), (.number, .emptySet), (.ip, .emptySet):
                throw error("'in []' is never true: an empty set holds nothing", at: location)
            case let (.number(element), .numberSet(set)): return .bool { set.contains(element($0)) }
            case let (.ip(address), .cidr(range)): return .bool { address($0).map(range.contains) ?? false }
            case let (.ip(address), .cidrSet(ranges)): return .bool { facts in address(facts).map { a in ranges.contains { $0.contains(a) } } ?? false }
            default: throw error("cannot test a \(left.type) 'in' a \(right.type); 'in' takes a set, or an address and cidr(…)", at: location)
            }
        default:
            throw error("unknown operator '\(op)'", at: location)
        }
    }

    /// A string literal compared with an attribute, checked against what the attribute can
    /// hold: `membership.status == "activ"` is a typo, not a rule that never matches; so is
    /// `title.id == "Le-Monde"` (stored lower-case).
    func checkLiteral(_ left: Expression, _ right: Expression, _ location: SourceLocation) throws(PolicyDiagnostic) {
        for (attribute, literal) in [(left, right), (right, left)] {
            if case let .attribute(path, _) = attribute, case let .string(value, literalLocation) = literal,
               Schema.lowerCase.contains(path.joined(separator: ".")), value != value.lowercased() {
                throw error("\(path.joined(separator: ".")) is stored lower-case: \"\(value)\" never matches; write \"\(value.lowercased())\"", at: literalLocation)
            }
            if case let .attribute(path, _) = attribute, case let .string(value, literalLocation) = literal,
               Schema.upperCase.contains(path.joined(separator: ".")), value != value.uppercased() {
                throw error("\(path.joined(separator: ".")) is stored upper-case: \"\(value)\" never matches; write \"\(value.uppercased())\"", at: literalLocation)
            }
            guard case let .attribute(path, _) = attribute, case let .string(value, literalLocation) = literal,
                  let allowed = Schema.enumerations[path.joined(separator: ".")], !allowed.contains(value)
            else { continue }
            let hint = closest(value, in: Array(allowed)).map { "; did you mean \"\($0)\"?" } ?? ""
            throw error("\(path.joined(separator: ".")) is never \"\(value)\"\(hint)", at: literalLocation)
        }
    }
}
