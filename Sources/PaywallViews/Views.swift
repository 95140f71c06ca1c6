import Foundation
import PaywallCore
import PaywallPolicy
import PaywallService
import PaywallStore
import PaywallTokens

/// The JSON shapes of what paywall shows: the CLI's `--json` output and the HTTP API's
/// bodies are these same structures. Field names are stable: scripts and apps depend on
/// them. Dates encode as ISO 8601 (``ViewEncoding``).
public struct AccountView: Encodable, Sendable {
    public var id: String
    public var email: String
    public var displayName: String?
    public var emailVerified: Bool
    public var emailVerifiedAt: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(_ account: Account) {
        id = account.id.rawValue
        email = account.email
        displayName = account.displayName
        emailVerified = account.emailVerifiedAt != nil
        emailVerifiedAt = account.emailVerifiedAt
        createdAt = account.createdAt
        updatedAt = account.updatedAt
    }
}

public struct TitleView: Encodable, Sendable {
    public var id: String
    public var name: String
    public var publisher: String
    public var tags: [String]
    public var createdAt: Date
    /// When it left the catalog; absent while it is in it.
    public var retiredAt: Date?

    public init(_ title: Title) {
        id = title.id.rawValue
        name = title.name
        publisher = title.publisher
        tags = title.tags.sorted()
        createdAt = title.createdAt
        retiredAt = title.retiredAt
    }
}

/// A title just retired, with the plans it left and those that now grant no title.
public struct RetiredTitleView: Encodable, Sendable {
    public var title: TitleView
    public var leftPlans: [String]
    public var emptiedPlans: [String]

    public init(title: TitleView, leftPlans: [String], emptiedPlans: [String]) {
        self.title = title
        self.leftPlans = leftPlans
        self.emptiedPlans = emptiedPlans
    }
}

public struct PlanView: Encodable, Sendable {
    public var id: String
    public var name: String
    public var period: String
    /// `["*"]` for all titles.
    public var titles: [String]
    public var allTitles: Bool
    public var createdAt: Date

    public init(_ plan: Plan) {
        id = plan.id.rawValue
        name = plan.name
        period = plan.period.rawValue
        switch plan.bundle {
        case .all:
            titles = []
            allTitles = true
        case let .titles(set):
            titles = set.sorted().map(\.rawValue)
            allTitles = false
        }
        createdAt = plan.createdAt
    }

}

public struct TrialView: Encodable, Sendable {
    public var id: Int64
    public var accountId: String?
    public var status: String
    public var startedAt: Date
    public var endsAt: Date

    public init(_ trial: Trial, now: Date) {
        id = trial.id
        accountId = trial.accountID?.rawValue
        status = trial.status(at: now).rawValue
        startedAt = trial.startedAt
        endsAt = trial.endsAt
    }
}

public struct MembershipView: Encodable, Sendable {
    public var id: Int64
    public var accountId: String
    public var plan: String
    public var status: String
    public var storedStatus: String
    public var currentPeriodEnd: Date
    public var gracePeriodEnd: Date?
    public var cancelAtPeriodEnd: Bool
    public var source: String
    public var createdAt: Date
    public var updatedAt: Date
    public var history: [ChangeView]?

    public struct ChangeView: Encodable, Sendable {
        public var from: String?
        public var to: String
        public var at: Date
        public var actor: String
        public var reason: String?
    }

    public init(_ membership: Membership, now: Date, history: [MembershipStatusChange]? = nil) {
        id = membership.id
        accountId = membership.accountID.rawValue
        plan = membership.planID.rawValue
        status = membership.effectiveStatus(at: now).rawValue
        storedStatus = membership.status.rawValue
        currentPeriodEnd = membership.currentPeriodEnd
        gracePeriodEnd = membership.gracePeriodEnd
        cancelAtPeriodEnd = membership.cancelAtPeriodEnd
        source = membership.source.rawValue
        createdAt = membership.createdAt
        updatedAt = membership.updatedAt
        self.history = history?.map { ChangeView(from: $0.from?.rawValue, to: $0.to.rawValue, at: $0.at, actor: $0.actor, reason: $0.reason) }
    }

}

public struct AuditView: Encodable, Sendable {
    public var id: Int64
    public var at: Date
    public var actor: String
    public var action: String
    public var target: String
    public var details: String

    public init(_ entry: AuditEntry) {
        id = entry.id
        at = entry.at
        actor = entry.actor.rawValue
        action = entry.action
        target = entry.target
        details = entry.details
    }
}

/// An account with its trial, trial eligibility and memberships (`account show`, `GET /v1/me`).
public struct AccountDetailView: Encodable, Sendable {
    public var account: AccountView
    public var trial: TrialView?
    public var memberships: [MembershipView]
    public var trialEligible: Bool
    /// The devices signed in, most recently used first.
    public var sessions: [SessionView]
    /// Links mailed and not used yet (never their tokens).
    public var pendingLinks: [PendingLinkView]

    public init(_ detail: AccountDetail, now: Date) {
        account = AccountView(detail.account)
        trial = detail.trial.map { TrialView($0, now: now) }
        memberships = detail.memberships.map { MembershipView($0, now: now) }
        trialEligible = detail.trialEligible
        sessions = detail.sessions.map(SessionView.init)
        pendingLinks = detail.pendingLinks.map(PendingLinkView.init)
    }
}

/// A decision, with its explanation when asked for.
public struct DecisionView: Encodable, Sendable {
    public var access: String
    public var teaserParagraphs: Int
    public var offers: [String]
    public var decidingRules: [String]
    public var meter: MeterView?
    public var shadowMatches: [String]
    public var revision: String
    public var isPrivate: Bool
    public var accessibleForFree: Bool
    public var explanation: [TraceView]?

    public struct MeterView: Encodable, Sendable {
        public var name: String
        public var consumed: Bool
        public var reread: Bool
        public var used: Int
        public var remaining: Int
        public var limit: Int
    }

    public struct TraceView: Encodable, Sendable {
        public var rule: String
        public var matched: Bool
        public var shadow: Bool
        public var failedCondition: String?
        public var location: String
    }

    public init(_ decision: Decision) {
        access = decision.access.description
        teaserParagraphs = decision.teaserParagraphs
        offers = decision.offers.map(\.description)
        decidingRules = decision.decidingRules
        meter = decision.meter.map { MeterView(name: $0.name, consumed: $0.consumed, reread: $0.reread, used: $0.used, remaining: $0.remaining, limit: $0.limit) }
        shadowMatches = decision.shadowMatches
        revision = decision.revision
        isPrivate = decision.isPrivate
        accessibleForFree = decision.accessibleForFree
        explanation = decision.explanation?.map {
            TraceView(rule: $0.rule, matched: $0.matched, shadow: $0.shadow, failedCondition: $0.failedCondition, location: $0.location.description)
        }
    }
}

/// How a proposed policy would change recorded decisions.
public struct PolicyImpactView: Encodable, Sendable {
    public var replayed: Int
    public var changed: Int
    public var byTitle: [String: Int]
    public var byRule: [String: Int]
    public var byAccess: [String: Int]

    public init(_ impact: PolicyImpact) {
        replayed = impact.replayed
        changed = impact.changed
        byTitle = impact.byTitle
        byRule = impact.byRule
        byAccess = impact.byAccess
    }
}

/// A policy published to the database (its files' names, not their text).
public struct PublishedPolicyView: Encodable, Sendable {
    public var number: Int64
    public var revision: String
    public var files: [String]
    public var author: String
    public var note: String?
    public var publishedAt: Date

    public init(_ published: PublishedPolicy) {
        number = published.number
        revision = published.revision
        files = published.files.keys.sorted()
        author = published.author
        note = published.note
        publishedAt = published.publishedAt
    }
}

/// A signing key and its state.
public struct KeyView: Encodable, Sendable {
    public var kid: String
    public var alg: String
    public var state: String
    public var createdAt: Date
    public var activatesAt: Date
    public var retiredAt: Date?

    public init(_ record: KeyRecord, state: KeyState) {
        kid = record.kid
        alg = record.algorithm.rawValue
        self.state = state.rawValue
        createdAt = record.createdAt
        activatesAt = record.activatesAt
        retiredAt = record.retiredAt
    }
}

/// An issued token and what it says.
public struct IssuedTokenView: Encodable, Sendable {
    public var token: String
    public var kind: String
    public var kid: String
    public var subject: String
    public var audience: [String]
    public var expiresAt: Date
    public var jti: String

    public init(_ issued: IssuedToken) {
        token = issued.token
        kind = issued.kind.rawValue
        kid = issued.kid
        subject = issued.claims.subject
        audience = issued.claims.audience
        expiresAt = issued.claims.expiresAt
        jti = issued.claims.tokenID
    }
}

/// Articles a reader read in a rolling window.
public struct MeterReportView: Encodable, Sendable {
    public var subject: String
    public var used: Int
    public var windowStart: Date
    public var windowEnd: Date
    public var title: String?

    public init(_ report: MeterReport) {
        subject = report.subject.key
        used = report.usage.used
        windowStart = report.usage.windowStart
        windowEnd = report.usage.windowEnd
        title = report.title?.rawValue
    }
}

/// The database's health, schema and sizes.
public struct DatabaseReportView: Encodable, Sendable {
    public var path: String
    public var healthy: Bool
    public var integrity: [String]
    public var foreignKeyViolations: [String]
    public var appliedMigrations: [String]
    public var pendingMigrations: [String]
    public var knownMigrations: Int
    public var accounts: Int
    public var auditEntries: Int

    public init(_ report: DatabaseReport) {
        path = report.path
        healthy = report.health.isHealthy
        integrity = report.health.integrity
        foreignKeyViolations = report.health.foreignKeyViolations
        appliedMigrations = report.health.appliedMigrations
        pendingMigrations = report.health.pendingMigrations
        knownMigrations = report.knownMigrations.count
        accounts = report.accounts
        auditEntries = report.auditEntries
    }
}

/// An error as adapters show it: the category's stable code and the message.
public struct ErrorView: Encodable, Sendable {
    public var code: String
    public var category: String
    public var message: String

    public init(_ error: ServiceError) {
        code = error.code
        category = error.category.rawValue
        message = error.description
    }
}

/// The one JSON encoding of views: sorted keys, ISO 8601 dates, `/` unescaped.
public enum ViewEncoding {
    public static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}

/// The answer to `POST /v1/access`.
public struct AccessView: Encodable, Sendable {
    public var access: String
    public var teaserParagraphs: Int
    /// In the policy's order: `{"type": "signUp"}`, `{"type": "trial", "days": 14}`, …
    public var offers: [OfferView]
    public var meter: AccessMeterView?
    public var decidingRules: [String]
    public var policyRevision: String
    /// A `paywall-article+jwt` a content server accepts, when the access is full.
    public var articleGrant: String?
    public var articleGrantExpiresAt: Date?
    /// The schema.org JSON-LD the article page should carry.
    public var jsonLd: JSONLDView

    public struct OfferView: Encodable, Sendable, Equatable {
        public var type: String
        public var days: Int?
    }

    public struct AccessMeterView: Encodable, Sendable {
        public var name: String
        public var used: Int
        public var limit: Int
        public var remaining: Int
        /// Whether this check used a unit (false for a re-read).
        public var consumed: Bool
        /// When the oldest counted read leaves the window (a unit frees up).
        public var resetsAt: Date?
    }

    /// `NewsArticle` with `isAccessibleForFree` and, when paywalled, the `hasPart` that
    /// names the gated block, as search engines require.
    public struct JSONLDView: Encodable, Sendable {
        public var context = "https://schema.org"
        public var type = "NewsArticle"
        public var isAccessibleForFree: Bool
        public var hasPart: PartView?

        public struct PartView: Encodable, Sendable {
            public var type = "WebPageElement"
            public var isAccessibleForFree = false
            public var cssSelector: String

            enum CodingKeys: String, CodingKey {
                case type = "@type", isAccessibleForFree, cssSelector
            }
        }

        enum CodingKeys: String, CodingKey {
            case context = "@context", type = "@type", isAccessibleForFree, hasPart
        }
    }

    /// The CSS selector of the block a page gates (`<div class="paywalled">`).
    public static let gatedSelector = ".paywalled"

    public init(_ answer: AccessAnswer) {
        let decision = answer.decision
        access = decision.access.description
        teaserParagraphs = decision.teaserParagraphs
        offers = decision.offers.map(OfferView.init)
        meter = decision.meter.map {
            AccessMeterView(name: $0.name, used: $0.used, limit: $0.limit, remaining: $0.remaining, consumed: $0.consumed, resetsAt: answer.meterResetsAt)
        }
        decidingRules = decision.decidingRules
        policyRevision = decision.revision
        articleGrant = answer.articleGrant?.token
        articleGrantExpiresAt = answer.articleGrant?.claims.expiresAt
        jsonLd = JSONLDView(
            isAccessibleForFree: decision.accessibleForFree,
            hasPart: decision.accessibleForFree ? nil : JSONLDView.PartView(cssSelector: Self.gatedSelector))
    }
}

extension AccessView.OfferView {
    public init(_ offer: Offer) {
        switch offer {
        case let .trial(days): self.init(type: "trial", days: days)
        case .signIn: self.init(type: "signIn", days: nil)
        case .signUp: self.init(type: "signUp", days: nil)
        case .subscribe: self.init(type: "subscribe", days: nil)
        }
    }
}

/// One article of `POST /v1/access/preview`: what a list page draws.
public struct PreviewItemView: Encodable, Sendable {
    public var title: String
    public var article: String
    public var access: String
    /// Free for everyone (a "free" badge).
    public var accessibleForFree: Bool
    /// Reading it would use a unit of a meter.
    public var metered: Bool
    /// Why there is no decision (`title_not_found`, `title_retired`): access is then `none`.
    public var unavailable: String?

    private init(title: String, article: String, access: AccessLevel, accessibleForFree: Bool, metered: Bool, unavailable: String?) {
        self.title = title
        self.article = article
        self.access = access.description
        self.accessibleForFree = accessibleForFree
        self.metered = metered
        self.unavailable = unavailable
    }

    public init(title: String, article: String, decision: Decision) {
        self.init(
            title: title, article: article, access: decision.access, accessibleForFree: decision.accessibleForFree,
            metered: decision.meter?.consumed ?? false, unavailable: nil)
    }

    public init(title: String, article: String, answer: PaywallService.PreviewAnswer) {
        switch answer {
        case let .decided(decision):
            self.init(title: title, article: article, decision: decision)
        case let .unavailable(error):
            self.init(title: title, article: article, access: .none, accessibleForFree: false, metered: false, unavailable: error.code)
        }
    }
}

/// A device token for an anonymous reader (`POST /v1/devices`).
public struct DeviceTokenView: Encodable, Sendable {
    public var deviceToken: String
    public var expiresAt: Date

    public init(_ issued: IssuedToken) {
        deviceToken = issued.token
        expiresAt = issued.claims.expiresAt
    }
}

/// A page of the audit log (`GET /admin/v1/audit`).
public struct AuditPageView: Encodable, Sendable {
    public var entries: [AuditView]
    /// Pass as `before` to get the next, older page; absent on the last page.
    public var nextBefore: Int64?

    public init(_ page: AuditPage) {
        entries = page.entries.map(AuditView.init)
        nextBefore = page.nextBefore
    }
}

/// The policy in force (`GET /admin/v1/policy`, and after a reload).
public struct PolicySummaryView: Encodable, Sendable {
    public var revision: String
    public var previousRevision: String?
    public var rules: [String]
    public var meters: [MeterDefinitionView]

    public struct MeterDefinitionView: Encodable, Sendable {
        public var name: String
        public var limit: Int
        public var windowSeconds: Int
    }

    public init(_ summary: PolicySummary) {
        revision = summary.revision
        previousRevision = summary.previousRevision
        rules = summary.rules
        meters = summary.meters.map { MeterDefinitionView(name: $0.name, limit: $0.limit, windowSeconds: Int($0.window)) }
    }
}

/// Reads per title over a period (`GET /admin/v1/reads`): metered reads (each reader's
/// article once) and gift reads; members' reads are not recorded.
public struct ReadsReportView: Encodable, Sendable {
    public var from: Date
    public var to: Date
    public var titles: [TitleReadsView]

    public struct TitleReadsView: Encodable, Sendable {
        public var title: String
        /// Metered reads recorded (re-reads included).
        public var reads: Int
        public var readers: Int
        public var articles: Int
        /// Reads through gift links (they use no meter).
        public var giftReads: Int
        public var giftArticles: Int
    }

    public init(_ report: ReadsReport) {
        from = report.from
        to = report.to
        titles = report.titles.map {
            TitleReadsView(title: $0.titleID.rawValue, reads: $0.reads, readers: $0.readers, articles: $0.articles, giftReads: $0.giftReads, giftArticles: $0.giftArticles)
        }
    }
}

/// An account's trial, or whether it may still start one (`trial show`, the admin API).
public struct TrialStatusView: Encodable, Sendable {
    public var trial: TrialView?
    public var eligible: Bool

    public init(_ detail: AccountDetail, now: Date) {
        trial = detail.trial.map { TrialView($0, now: now) }
        eligible = detail.trialEligible
    }
}

/// A gift link just made (`POST /v1/gifts`).
public struct GiftView: Encodable, Sendable {
    /// The `paywall-gift+jwt` the link carries; `POST /v1/access` takes it as `gift`.
    public var giftToken: String
    public var title: String
    public var article: String
    public var expiresAt: Date
    public var giftsUsedThisMonth: Int
    public var monthlyLimit: Int

    public init(_ issued: IssuedGift) {
        giftToken = issued.token
        title = issued.gift.titleID.rawValue
        article = issued.gift.articleID
        expiresAt = issued.gift.expiresAt
        giftsUsedThisMonth = issued.usedThisMonth
        monthlyLimit = issued.monthlyLimit
    }
}
