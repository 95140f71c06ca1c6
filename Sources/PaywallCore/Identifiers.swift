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

/// The shape shared by the catalog's identifiers: 1 to 64 characters of `a-z`, `0-9` and
/// `-`, starting with a letter or digit (e.g. `euronews`, `annual-all`). Each identifier is
/// its own type, so a plan id can never be passed where a title id is expected.
public protocol SlugIdentifier: RawRepresentable, Hashable, Sendable, Codable, Comparable, CustomStringConvertible where RawValue == String {
    /// What the identifier is called in messages ("title id", "plan id").
    static var kind: String { get }
    /// Wraps an already validated value (from the store).
    init(rawValue: String)
}

extension SlugIdentifier {
    /// Validates `text` (trimmed) as an identifier of this kind.
    public init(validating text: String) throws(DomainError) {
        self.init(rawValue: try validateSlug(text, kind: Self.kind))
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}

/// Checks the slug shape; returns the trimmed value.
func validateSlug(_ text: String, kind: String) throws(DomainError) -> String {
    let value = text.trimmingWhitespace()
    func fail(_ reason: String) -> DomainError {
        .invalidIdentifier(kind: kind, value: value, reason: reason)
    }
    if value.isEmpty { throw fail("it is empty") }
    if value.utf8.count > 64 { throw fail("it is longer than 64 characters") }
    if let bad = value.unicodeScalars.first(where: { !slugCharacters.contains($0) }) {
        throw fail("character '\(bad)' is not allowed; use a-z, 0-9 and '-'")
    }
    if value.first == "-" { throw fail("it may not start with '-'") }
    return value
}

private let slugCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789-".unicodeScalars)

/// A title's identifier, e.g. `euronews`.
public struct TitleID: SlugIdentifier {
    public static let kind = "title id"
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// A plan's identifier, e.g. `monthly-all`.
public struct PlanID: SlugIdentifier {
    public static let kind = "plan id"
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

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
