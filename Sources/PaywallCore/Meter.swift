import Foundation

/// Whose reads a meter counts: a signed-in account or an anonymous device.
public enum MeterSubject: Hashable, Sendable, CustomStringConvertible {
    case account(AccountID)
    case device(String)

    /// The stored key, e.g. `account:…` or `device:…`.
    public var key: String {
        switch self {
        case let .account(id): "account:\(id.rawValue)"
        case let .device(id): "device:\(id)"
        }
    }

    public var description: String { key }

    /// Validates an anonymous device id: 1 to 128 printable ASCII characters, no spaces.
    public static func device(validating raw: String) throws(DomainError) -> MeterSubject {
        let value = raw.trimmingWhitespace()
        guard !value.isEmpty, value.utf8.count <= 128,
              value.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F })
        else {
            throw .invalidValue(field: "device id", value: value, expected: "1 to 128 printable ASCII characters without spaces")
        }
        return .device(value)
    }
}

/// An article a reader opened.
public struct ArticleRead: Hashable, Sendable {
    public var subject: MeterSubject
    public var titleID: TitleID
    public var articleID: String
    public var at: Date

    public init(subject: MeterSubject, titleID: TitleID, articleID: String, at: Date) {
        self.subject = subject
        self.titleID = titleID
        self.articleID = articleID
        self.at = at
    }

    /// Validates an article id: 1 to 256 characters, no control characters.
    public static func validateArticleID(_ raw: String) throws(DomainError) -> String {
        let value = raw.trimmingWhitespace()
        guard !value.isEmpty, value.utf8.count <= 256,
              !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw .invalidValue(field: "article id", value: value, expected: "1 to 256 characters without control characters")
        }
        return value
    }
}

/// How much of a meter a subject has used in a window.
public struct MeterUsage: Hashable, Sendable {
    /// Distinct articles read in the window.
    public var used: Int
    public var windowStart: Date
    public var windowEnd: Date

    public init(used: Int, windowStart: Date, windowEnd: Date) {
        self.used = used
        self.windowStart = windowStart
        self.windowEnd = windowEnd
    }
}
