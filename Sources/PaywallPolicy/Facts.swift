import Foundation

/// Everything a decision depends on besides the policy: a pure function of this.
public struct DecisionFacts: Sendable {
    public var user = UserFacts()
    public var membership = MembershipFacts()
    public var trial = TrialFacts()
    public var title = TitleFacts()
    public var article = ArticleFacts()
    public var request = RequestFacts()
    /// The instant of the decision.
    public var now: Date
    /// Per meter of the policy (``Policy/meters`` order): use in its window.
    public var meters: [MeterFacts]

    public init(now: Date, meters: [MeterFacts] = []) {
        self.now = now
        self.meters = meters
    }
}

public struct UserFacts: Sendable {
    public var signedIn = false
    public var id = ""
    public var emailDomain = ""
    public var emailVerified = false
    public var createdAt = Date(timeIntervalSince1970: 0)
    public init() {}
}

/// The reader's best membership (active over past due over canceled), and the titles of
/// every membership that currently grants access.
public struct MembershipFacts: Sendable {
    /// `active`, `past_due`, `canceled`, `expired`, or `none`.
    public var status = "none"
    /// Status `active` and within the period.
    public var active = false
    public var plan = ""
    public var titles: Set<String> = []
    /// All titles, whatever `titles` lists (a plan granting every title).
    public var allTitles = false
    public var periodEnds = Date(timeIntervalSince1970: 0)
    public var graceEnds = Date(timeIntervalSince1970: 0)
    public init() {}
}

public struct TrialFacts: Sendable {
    public var active = false
    public var eligible = false
    public var endsAt = Date(timeIntervalSince1970: 0)
    public init() {}
}

public struct TitleFacts: Sendable {
    public var id = ""
    public var publisher = ""
    public var tags: Set<String> = []
    public init() {}
}

public struct ArticleFacts: Sendable {
    public var id = ""
    /// Marked free by the publisher.
    public var free = false
    public var publishedAt = Date(timeIntervalSince1970: 0)
    public var section = ""
    public var tags: Set<String> = []
    public init() {}
}

public struct RequestFacts: Sendable {
    public var ip: IPAddress?
    public var country = ""
    public var referrerHost = ""
    /// `web`, `app`, `rss`, `email` or `api`.
    public var channel = "web"
    public var verifiedCrawler = false
    public var device = ""
    public init() {}
}

/// A meter's state for the reader: articles used in the window, and whether this article
/// is already among them (a re-read costs nothing).
public struct MeterFacts: Sendable, Equatable {
    public var used: Int
    public var alreadyRead: Bool
    public init(used: Int = 0, alreadyRead: Bool = false) {
        self.used = used
        self.alreadyRead = alreadyRead
    }
}
