import Foundation

/// A publication in the catalog, e.g. Euronews.
public struct Title: Hashable, Sendable, Codable {
    public var id: TitleID
    public var name: String
    public var publisher: String
    /// Labels policies can test (`title.tags`), e.g. `academic`, `local`.
    public var tags: Set<String>
    public var createdAt: Date
    /// When the title left the catalog (its publisher left the aggregator): no longer read
    /// or sold, its reads kept for the publisher's reports. Nil: in the catalog.
    public var retiredAt: Date?

    public init(id: TitleID, name: String, publisher: String, tags: Set<String> = [], createdAt: Date, retiredAt: Date? = nil) {
        self.id = id
        self.name = name
        self.publisher = publisher
        self.tags = tags
        self.createdAt = createdAt
        self.retiredAt = retiredAt
    }

    public var isRetired: Bool { retiredAt != nil }

    /// At most this many tags per title.
    public static let maximumTags = 32

    /// Validates tags: each a slug (`a-z`, `0-9`, `-`, at most 64 characters), at most
    /// ``maximumTags`` of them. Returns them lower-cased and trimmed.
    public static func validatedTags(_ tags: [String]) throws(DomainError) -> Set<String> {
        var result: Set<String> = []
        for tag in tags {
            result.insert(try validateSlug(tag.lowercased(), kind: "tag"))
        }
        guard result.count <= maximumTags else {
            throw DomainError.invalidValue(field: "tags", value: "\(result.count) tags", expected: "at most \(maximumTags)")
        }
        return result
    }
}

/// The titles a plan grants.
public enum TitleBundle: Hashable, Sendable {
    /// Every title in the catalog, present and future.
    case all
    /// Only the listed titles.
    case titles(Set<TitleID>)

    /// Whether the bundle includes `title`.
    public func contains(_ title: TitleID) -> Bool {
        switch self {
        case .all: true
        case let .titles(set): set.contains(title)
        }
    }
}

/// How often a plan renews.
public enum BillingPeriod: String, Hashable, Sendable, Codable, CaseIterable {
    case week, month, year

    /// The length of one period in seconds (calendar-agnostic: 7, 30 and 365 days).
    public var approximateLength: TimeInterval {
        switch self {
        case .week: 7 * 86_400
        case .month: 30 * 86_400
        case .year: 365 * 86_400
        }
    }
}

/// A membership plan: monthly, annual, …, granting a bundle of titles.
public struct Plan: Hashable, Sendable {
    public var id: PlanID
    public var name: String
    public var period: BillingPeriod
    public var bundle: TitleBundle
    public var createdAt: Date

    public init(id: PlanID, name: String, period: BillingPeriod, bundle: TitleBundle, createdAt: Date) {
        self.id = id
        self.name = name
        self.period = period
        self.bundle = bundle
        self.createdAt = createdAt
    }
}
