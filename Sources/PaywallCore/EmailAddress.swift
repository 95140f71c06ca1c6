/// A validated email address.
///
/// `value` keeps the address as entered (trimmed); ``lookupKey`` is the lower-cased form
/// accounts are unique by; ``personKey`` additionally drops a `+tag` and, for Gmail, the dots,
/// so that one person cannot obtain a second free trial with an alias.
public struct EmailAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address as entered, trimmed of surrounding white space.
    public let value: String

    /// The lower-cased address: the key accounts are unique by.
    public var lookupKey: String { value.lowercased() }

    /// The lower-cased address with `+tag` removed and, for Gmail, dots ignored. A local
    /// part that starts with `+` is kept whole: the key never has an empty local part.
    public var personKey: String {
        let lower = lookupKey
        guard let at = lower.lastIndex(of: "@") else { return lower }
        var local = String(lower[..<at])
        var domain = String(lower[lower.index(after: at)...])
        // Only a tag after something: "+x@d.com" keeps its local part (stripping it would
        // leave "@d.com", one key shared by every such address).
        if let plus = local.firstIndex(of: "+"), plus != local.startIndex {
            local = String(local[..<plus])
        }
        if domain == "googlemail.com" { domain = "gmail.com" }
        if domain == "gmail.com" {
            local.removeAll { $0 == "." }
        }
        return local + "@" + domain
    }

    /// The part after the `@`, lower-cased.
    public var domain: String {
        let lower = lookupKey
        guard let at = lower.lastIndex(of: "@") else { return "" }
        return String(lower[lower.index(after: at)...])
    }

    public var description: String { value }

    /// An address the store wrote after validating it with ``init(_:)`` (an account's
    /// row): not validated again. Every access check reads one, and validating it again
    /// was 3–4% of a member check (measured with `perf`).
    public init(stored value: String) { self.value = value }

    /// Validates the shape of an address (RFC 5321 limits, dot-atom local part, a domain
    /// of at least two labels). Throws ``DomainError/invalidEmail(_:reason:)``.
    public init(_ raw: String) throws(DomainError) {
        let trimmed = raw.trimmingWhitespace()
        func fail(_ reason: String) -> DomainError { .invalidEmail(trimmed, reason: reason) }

        if trimmed.isEmpty { throw fail("it is empty") }
        if trimmed.utf8.count > 254 { throw fail("it is longer than 254 characters") }
        guard trimmed.unicodeScalars.allSatisfy({ $0.isASCII }) else {
            throw fail("only ASCII addresses are supported")
        }
        let parts = trimmed.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw fail("it must contain exactly one '@'") }
        let local = parts[0]
        let domain = parts[1]

        if local.isEmpty { throw fail("nothing before the '@'") }
        if local.utf8.count > 64 { throw fail("the part before the '@' is longer than 64 characters") }
        if local.first == "." || local.last == "." || local.contains("..") {
            throw fail("dots may not start, end or repeat in the part before the '@'")
        }
        let localAllowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-")
        if let bad = local.first(where: { !localAllowed.contains($0) }) {
            throw fail("character '\(PrintableText.quoted(String(bad)))' is not allowed before the '@'")
        }

        if domain.isEmpty { throw fail("nothing after the '@'") }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { throw fail("the domain needs a dot, e.g. example.com") }
        let labelAllowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
        for label in labels {
            if label.isEmpty { throw fail("the domain has an empty label") }
            if label.utf8.count > 63 { throw fail("a domain label is longer than 63 characters") }
            if label.first == "-" || label.last == "-" {
                throw fail("a domain label may not start or end with '-'")
            }
            if let bad = label.first(where: { !labelAllowed.contains($0) }) {
                throw fail("character '\(PrintableText.quoted(String(bad)))' is not allowed in the domain")
            }
        }
        if let tld = labels.last, tld.allSatisfy(\.isNumber) {
            throw fail("the top-level domain may not be numeric")
        }
        value = trimmed
    }
}

extension String {
    /// The string without leading and trailing white space and newlines.
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
