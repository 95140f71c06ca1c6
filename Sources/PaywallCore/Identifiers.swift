import Foundation

/// An account's identifier: a lower-case UUID string.
public struct AccountID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// A new random identifier.
    public static func generate() -> AccountID { AccountID(rawValue: UUID().uuidString.lowercased()) }
    /// Whether `text` has the shape of an account id (a UUID).
    public static func looksLikeID(_ text: String) -> Bool { UUID(uuidString: text) != nil }
    public var description: String { rawValue }
}

/// A slug naming a title or a plan: 1 to 64 characters of `a-z`, `0-9` and `-`,
/// starting with a letter or digit (e.g. `euronews`, `annual-all`).
public struct Slug: RawRepresentable, Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let rawValue: String

    /// Wraps an already validated value (from the store).
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Validates `text` as a slug of the given kind ("title", "plan").
    public init(validating text: String, kind: String) throws(DomainError) {
        let value = text.trimmingWhitespace()
        func fail(_ reason: String) -> DomainError {
            .invalidIdentifier(kind: kind, value: value, reason: reason)
        }
        if value.isEmpty { throw fail("it is empty") }
        if value.utf8.count > 64 { throw fail("it is longer than 64 characters") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        if let bad = value.first(where: { !allowed.contains($0) }) {
            throw fail("character '\(bad)' is not allowed; use a-z, 0-9 and '-'")
        }
        if value.first == "-" { throw fail("it may not start with '-'") }
        rawValue = value
    }

    public static func < (lhs: Slug, rhs: Slug) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}

/// A title's identifier, e.g. `euronews`.
public typealias TitleID = Slug
/// A plan's identifier, e.g. `monthly-all`.
public typealias PlanID = Slug

/// Validates a human-readable name: trimmed, 1 to 200 characters, no control characters.
public func validatedName(_ text: String, kind: String) throws(DomainError) -> String {
    let value = text.trimmingWhitespace()
    if value.isEmpty { throw DomainError.invalidName(kind: kind, reason: "it is empty") }
    if value.count > 200 { throw DomainError.invalidName(kind: kind, reason: "it is longer than 200 characters") }
    if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
        throw DomainError.invalidName(kind: kind, reason: "it contains control characters")
    }
    return value
}
