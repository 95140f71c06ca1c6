/// Access levels, ordered: the headline alone < a teaser < the full text.
public enum AccessLevel: Int, Comparable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The headline alone.
    case none = 0
    case teaser = 1
    case full = 2

    public static func < (lhs: AccessLevel, rhs: AccessLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .none: "none"
        case .teaser: "teaser"
        case .full: "full"
        }
    }

    public init?(name: String) {
        switch name {
        case "none", "headline": self = .none
        case "teaser": self = .teaser
        case "full": self = .full
        default: return nil
        }
    }
}

/// What a page may offer a reader who cannot read in full.
public enum Offer: Hashable, Sendable, CustomStringConvertible {
    /// "Fourteen days free".
    case trial(days: Int)
    /// "Already a member? Sign in here".
    case signIn
    /// "Sign up to read this article".
    case signUp
    /// "Subscribe".
    case subscribe

    public var description: String {
        switch self {
        case let .trial(days): "trial \(days) days"
        case .signIn: "signIn"
        case .signUp: "signUp"
        case .subscribe: "subscribe"
        }
    }

    /// Parses the form `description` prints (used by policy tests).
    public init?(text: String) {
        let words = text.split(separator: " ")
        switch words.first {
        case "signIn": self = .signIn
        case "signUp": self = .signUp
        case "subscribe": self = .subscribe
        case "trial":
            guard words.count == 3, let days = Int(words[1]), words[2] == "days" || words[2] == "day" else { return nil }
            self = .trial(days: days)
        default: return nil
        }
    }
}

/// A source range, for explanations that quote the failing part of a condition.
struct SourceSpan: Hashable, Sendable {
    var start: Int
    var end: Int
}

/// Expressions of the policy language.
indirect enum Expression: Sendable {
    case bool(Bool, SourceLocation)
    case number(Double, SourceLocation)
    case string(String, SourceLocation)
    /// A duration in seconds (`14 days`).
    case duration(Double, SourceLocation)
    case set([Expression], SourceLocation)
    /// `time("2026-01-01T00:00:00Z")`, `cidr("10.0.0.0/8")`, `ip("…")`.
    case call(String, [Expression], SourceLocation)
    /// A dotted attribute path: `user.signedIn`, `now`.
    case attribute([String], SourceLocation)
    /// `meter("free-articles").remaining`.
    case meter(String, String, SourceLocation)
    case not(Expression, SourceLocation)
    /// A comparison or `in`: `==`, `!=`, `<`, `<=`, `>`, `>=`, `in` (they do not chain).
    case binary(String, Expression, Expression, SourceLocation)
    /// `a and b and …` or `a or b or …`: one flat node however long the
    /// chain, so parsing, compiling, evaluating and freeing it never recurse per operand.
    case chain(Connective, [Expression], operators: [SourceLocation])
    /// `a + b - c …`, left to right: flat for the same reason.
    case sum(Expression, [SumTerm])

    /// Where errors about the expression point: an operator's location for operations.
    var location: SourceLocation {
        switch self {
        case let .bool(_, l), let .number(_, l), let .string(_, l), let .duration(_, l), let .set(_, l),
             let .call(_, _, l), let .attribute(_, l), let .meter(_, _, l), let .not(_, l), let .binary(_, _, _, l):
            return l
        case let .chain(_, operands, operators):
            return operators.first ?? operands.first?.location ?? SourceLocation(file: "", line: 1, column: 1)
        case let .sum(first, terms):
            return terms.first?.location ?? first.location
        }
    }
}

/// The connective of a chain of conditions.
enum Connective: String, Sendable {
    case and, or
}

/// One `+ x` or `- x` of a sum, with the operator's location.
struct SumTerm: Sendable {
    var subtract: Bool
    var operand: Expression
    var location: SourceLocation
}

/// One conjunct of a condition with its source text (for explanations).
struct Conjunct: Sendable {
    var expression: Expression
    var text: String
}

enum Effect: Sendable {
    case grant(AccessLevel, meter: String?, SourceLocation)
    case cap(AccessLevel, SourceLocation)
    case offer([Offer], SourceLocation)
}

struct RuleDecl: Sendable {
    var name: String
    var shadow: Bool
    /// The condition split at top-level `and`s; empty means "always".
    var conjuncts: [Conjunct]
    var effects: [Effect]
    var location: SourceLocation
    /// The title section the rule is in, if any.
    var title: String?
    /// The rule's position across the policy set (file order, then source order).
    var order: Int
}

struct MeterDecl: Sendable {
    var name: String
    var limit: Int
    var window: Double
    var location: SourceLocation
}

struct SettingsDecl: Sendable {
    var access: AccessLevel?
    var teaserParagraphs: Int?
    var location: SourceLocation
}

struct TitleDecl: Sendable {
    var id: String
    var settings: SettingsDecl
    var location: SourceLocation
}

/// One parsed policy file.
struct PolicyFileAST: Sendable {
    var file: String
    var meters: [MeterDecl] = []
    var defaults: [SettingsDecl] = []
    var titles: [TitleDecl] = []
    var rules: [RuleDecl] = []
    var source: String
}
