/// The types of the policy language.
public enum PolicyType: String, Sendable, CustomStringConvertible {
    case bool, number, string, duration, time, ip, cidr
    case stringSet = "set of strings"
    case numberSet = "set of numbers"
    case cidrSet = "set of address ranges"
    case emptySet = "empty set"

    public var description: String { rawValue }
}

/// The attributes a policy may read, with their types: what the checker validates against.
enum Schema {
    static let attributes: [String: PolicyType] = [
        "user.signedIn": .bool, "user.id": .string, "user.emailDomain": .string, "user.emailVerified": .bool, "user.createdAt": .time,
        "membership.status": .string, "membership.active": .bool, "membership.entitled": .bool, "membership.plan": .string, "membership.titles": .stringSet, "membership.allTitles": .bool,
        "membership.periodEnds": .time, "membership.graceEnds": .time,
        "trial.active": .bool, "trial.eligible": .bool, "trial.endsAt": .time,
        "title.id": .string, "title.publisher": .string, "title.tags": .stringSet,
        "article.id": .string, "article.free": .bool, "article.publishedAt": .time, "article.age": .duration,
        "article.section": .string, "article.tags": .stringSet,
        "request.ip": .ip, "request.country": .string, "request.referrerHost": .string, "request.channel": .string,
        "request.verifiedCrawler": .bool, "request.device": .string,
        "now": .time,
    ]

    static let meterFields: [String] = ["used", "remaining", "limit"]

    /// Values some string attributes can take, so a typo in a literal is caught.
    static let enumerations: [String: Set<String>] = [
        "membership.status": ["none", "active", "past_due", "canceled", "expired"],
        "request.channel": ["web", "app", "rss", "email", "api"],
    ]

    /// Attributes whose values are stored lower-case (title ids and tags are slugs, the
    /// email's domain is lower-cased): a literal compared with them must be too, or the
    /// rule never matches (`"Academic" in title.tags`).
    /// The service writes these lower-case (ids and slugs, host names, device kinds), and
    /// `request.country` upper-case (ISO 3166 codes): a literal in another case never
    /// matches, and a cap written with one failed open (found in review:
    /// `request.country == "fr"` checked clean and never applied).
    static let lowerCase: Set<String> = [
        "title.id", "title.tags", "membership.titles", "membership.plan", "user.emailDomain", "user.id", "request.referrerHost", "request.device",
    ]
    static let upperCase: Set<String> = ["request.country"]

    /// The root of attributes that make a decision depend on who reads.
    static let readerRoots: Set<String> = ["user", "membership", "trial", "request", "meter"]
}
