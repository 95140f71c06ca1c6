/// Invalid domain input, with a message a user can act on.
public enum DomainError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidEmail(String, reason: String)
    case weakPassword(PasswordPolicy.Violation)
    case invalidIdentifier(kind: String, value: String, reason: String)
    case invalidName(kind: String, reason: String)
    case invalidDuration(String)
    case invalidDate(String)
    case invalidValue(field: String, value: String, expected: String)

    /// A rejected value is shown by its first 64 characters, escaped
    /// (``PrintableText/quoted(_:limit:)``): a 5,000-character id echoed whole made the
    /// error bigger than the request, and a value with a newline wrote a line of its own
    /// into the server's log.
    public var description: String {
        switch self {
        case .invalidEmail(_, let reason):
            // Not echoed: what a reader types in the email field is sometimes their
            // password, and refusals are logged. The reason says what is wrong.
            return "invalid email address: \(reason)"
        case let .weakPassword(violation):
            return "password rejected: \(violation)"
        case let .invalidIdentifier(kind, value, reason):
            return "invalid \(kind) '\(PrintableText.quoted(value))': \(reason)"
        case let .invalidName(kind, reason):
            return "invalid \(kind) name: \(reason)"
        case let .invalidDuration(value):
            return "invalid duration '\(PrintableText.quoted(value))': use a whole number above 0 with a unit (s, m, h, d or w), e.g. 90s, 15m, 12h, 14d; at most \(TimeText.format(duration: TimeText.maximumDuration))"
        case let .invalidDate(value):
            return "invalid date '\(PrintableText.quoted(value))': use ISO 8601, e.g. 2026-12-31 or 2026-12-31T23:59:59Z"
        case let .invalidValue(field, value, expected):
            return value.isEmpty ? "no \(field) given: expected \(expected)" : "invalid \(field) '\(PrintableText.quoted(value))': expected \(expected)"
        }
    }
}
