/// Invalid domain input, with a message a user can act on.
public enum DomainError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidEmail(String, reason: String)
    case weakPassword(PasswordPolicy.Violation)
    case invalidIdentifier(kind: String, value: String, reason: String)
    case invalidName(kind: String, reason: String)
    case invalidDuration(String)
    case invalidDate(String)
    case invalidValue(field: String, value: String, expected: String)

    /// A rejected value as a message shows it: the first 64 characters, then "…" (a
    /// 5,000-character id echoed whole made the error bigger than the request).
    static func shown(_ value: String) -> String {
        value.count <= 64 ? value : String(value.prefix(64)) + "…"
    }

    public var description: String {
        switch self {
        case let .invalidEmail(value, reason):
            return "invalid email address '\(Self.shown(value))': \(reason)"
        case let .weakPassword(violation):
            return "password rejected: \(violation)"
        case let .invalidIdentifier(kind, value, reason):
            return "invalid \(kind) '\(Self.shown(value))': \(reason)"
        case let .invalidName(kind, reason):
            return "invalid \(kind) name: \(reason)"
        case let .invalidDuration(value):
            return "invalid duration '\(Self.shown(value))': use a number with a unit, e.g. 90s, 15m, 12h, 14d"
        case let .invalidDate(value):
            return "invalid date '\(Self.shown(value))': use ISO 8601, e.g. 2026-12-31 or 2026-12-31T23:59:59Z"
        case let .invalidValue(field, value, expected):
            return value.isEmpty ? "no \(field) given: expected \(expected)" : "invalid \(field) '\(Self.shown(value))': expected \(expected)"
        }
    }
}
