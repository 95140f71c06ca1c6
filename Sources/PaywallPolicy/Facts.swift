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

/// The reader's membership *on the title being decided*: of the reader's memberships whose
/// plan covers this title, the best one at the decision time (active over past due over
/// canceled over expired, then the later period end). Statuses are as in effect at that
/// instant: an active or canceled membership whose period has ended, or a past-due one
/// whose grace has ended, is `expired` even if the store has not caught up yet.
/// `titles`/`allTitles` describe every membership that grants access, whatever the title.
public struct MembershipFacts: Sendable {
    /// The effective status of the membership covering this title: `active`, `past_due`,
    /// `canceled`, `expired`, or `none` (no membership of the reader covers it).
    public var status = "none"
    /// `status == "active"`: paid up and within the period.
    public var active = false
    /// That membership gives access now: active, past due within its grace period, or
    /// canceled before its period ends (its grace end, if canceled while past due).
    public var entitled = false
    /// The plan of that membership ("" without one).
    public var plan = ""
    /// The titles of every membership of the reader that gives access now.
    public var titles: Set<String> = []
    /// Some membership that gives access now grants every title.
    public var allTitles = false
    /// End of that membership's paid period.
    public var periodEnds = Date(timeIntervalSince1970: 0)
    /// When its access ends: the grace end when past due or canceled while past due (else
    /// the period end).
    public var graceEnds = Date(timeIntervalSince1970: 0)
    public init() {}

    /// Whether an effective status gives access (`entitled`).
    public static func entitles(_ status: String) -> Bool {
        status == "active" || status == "past_due" || status == "canceled"
    }
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

    /// `text` as a host name the policy compares (lower-case letters, digits, dashes and
    /// dots, 1 to 253 characters), or nil.
    public static func hostName(_ text: String) -> String? {
        let host = text.lowercased()
        guard (1...253).contains(host.utf8.count),
              host.utf8.allSatisfy({ (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") })
        else { return nil }
        return host
    }
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
