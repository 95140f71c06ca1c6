import Foundation
import PaywallCore
import PaywallService
import PaywallStore

/// A session as the reader sees it (`GET /v1/me`, sign-in answers).
public struct SessionView: Encodable, Sendable {
    public var id: String
    public var deviceName: String?
    public var startedAt: Date
    public var lastUsedAt: Date
    public var expiresAt: Date

    public init(_ session: ActiveSession) {
        id = session.id
        deviceName = session.deviceName
        startedAt = session.startedAt
        lastUsedAt = session.lastUsedAt
        expiresAt = session.expiresAt
    }
}

/// Sign up, sign in and refresh: the tokens, the session they open, and what the cap ended.
public struct ReaderSessionView: Encodable, Sendable {
    public var account: AccountView
    public var tokenType = "Bearer"
    public var accessToken: String
    public var accessTokenExpiresAt: Date
    public var refreshToken: String
    public var refreshTokenExpiresAt: Date
    public var session: SessionView
    /// Sessions ended because the account was at its cap (least recently used).
    public var endedSessions: [SessionView]
    /// Reads of the device token given at sign-up that now count for the account.
    public var carriedReads: Int
    /// Sign-up only: `sent`, `queued` (waiting in the outbox) or `failed` (to be retried).
    public var verificationMail: String?
    /// A password change only: how many sessions it ended (every one the account had).
    public var signedOutSessions: Int?

    public init(_ session: ReaderSession) {
        account = AccountView(session.account)
        accessToken = session.accessToken.token
        accessTokenExpiresAt = session.accessToken.claims.expiresAt
        refreshToken = session.refreshToken
        refreshTokenExpiresAt = session.refreshTokenExpiresAt
        self.session = SessionView(session.session)
        endedSessions = session.endedSessions.map(SessionView.init)
        carriedReads = session.carriedReads
        verificationMail = session.mail.map { _ in MailStatus.queued.rawValue }
        signedOutSessions = session.signedOutSessions
    }
}

/// A link mailed to a reader and not used yet: what it does (`verify-email`,
/// `reset-password`, `undo-email-change` with the address it would put back) and until when.
/// Never its token. In the reader's data export and support's view of an account.
public struct PendingLinkView: Encodable, Sendable {
    public var purpose: String
    public var restores: String?
    public var expiresAt: Date

    public init(_ link: Store.PendingLink) {
        purpose = link.purpose
        restores = link.restores
        expiresAt = link.expiresAt
    }
}

/// Support signed a reader out everywhere (`POST /admin/v1/accounts/{account}/sign-out`,
/// `paywall account sign-out --json`): the account's id and how many sessions ended.
public struct SignedOutView: Encodable, Sendable {
    public var account: String
    public var endedSessions: Int

    public init(account: String, endedSessions: Int) {
        self.account = account
        self.endedSessions = endedSessions
    }
}

/// What happened to a mail just queued: `queued`, always, now that a courier delivers it
/// after the answer (`sent` and `failed` stay in the contract for clients that read them).
public enum MailStatus: String, Sendable {
    case sent, queued, failed
}

/// A reader's trial, with the whole days it has left (0 once over).
public struct ReaderTrialView: Encodable, Sendable {
    public var status: String
    public var startedAt: Date
    public var endsAt: Date
    public var daysLeft: Int

    public init(_ trial: Trial, now: Date) {
        let status = trial.status(at: now)
        self.status = status.rawValue
        startedAt = trial.startedAt
        endsAt = trial.endsAt
        daysLeft = status == .active ? Int((trial.endsAt.timeIntervalSince(now) / 86_400).rounded(.up)) : 0
    }
}

/// A meter as it stands for the reader: free articles left this window.
public struct MeterStandingView: Encodable, Sendable {
    public var name: String
    public var limit: Int
    public var used: Int
    public var remaining: Int
    public var windowDays: Double
    public var resetsAt: Date?

    public init(_ meter: MeterStanding) {
        name = meter.name
        limit = meter.limit
        used = meter.used
        remaining = meter.remaining
        windowDays = meter.window / 86_400
        resetsAt = meter.resetsAt
    }
}

/// `GET /v1/me`.
public struct ProfileView: Encodable, Sendable {
    public var account: AccountView
    public var memberships: [MembershipView]
    public var trial: ReaderTrialView?
    public var trialEligible: Bool
    public var offeredTrialDays: Int?
    public var meters: [MeterStandingView]
    public var sessions: [SessionView]

    public init(_ profile: ReaderProfile) {
        account = AccountView(profile.account)
        memberships = profile.memberships.map { MembershipView($0, now: profile.now) }
        trial = profile.trial.map { ReaderTrialView($0, now: profile.now) }
        trialEligible = profile.trialEligible
        offeredTrialDays = profile.offeredTrialDays
        meters = profile.meters.map(MeterStandingView.init)
        sessions = profile.sessions.map(SessionView.init)
    }
}

/// Everything stored about one reader (`POST /v1/me/export`, `paywall account export`).
public struct AccountExportView: Encodable, Sendable {
    /// `you`, `staff`, `another reader`, or the actor itself when it names no one (`system`).
    static func kind(of actor: AuditActor, own: String) -> String {
        let raw = actor.rawValue
        if raw == own { return "you" }
        if raw.hasPrefix("admin:") { return "staff" }
        if raw.hasPrefix("account:") { return "another reader" }
        return raw.split(separator: ":").first.map(String.init) ?? raw
    }

    public struct Read: Encodable, Sendable {
        public var title: String
        public var article: String
        public var at: Date
    }

    /// An article read through someone's gift link (the gift's id, not its giver).
    public struct GiftRead: Encodable, Sendable {
        public var gift: String
        public var title: String
        public var article: String
        public var at: Date
    }

    public struct GivenGift: Encodable, Sendable {
        public var id: String
        public var title: String
        public var article: String
        public var createdAt: Date
        public var expiresAt: Date
    }

    /// A payment provider's event about the reader, without the stored reason: a reason
    /// can name another account (a subscription that went to it) or a member of staff.
    public struct BillingEvent: Encodable, Sendable {
        public var provider: String
        public var event: String
        public var type: String
        public var outcome: String
        public var subscription: String?
        public var occurredAt: Date
    }

    public struct Billing: Encodable, Sendable {
        public var links: [BillingOverviewView.Link]
        public var subscriptions: [BillingOverviewView.Subscription]
        public var events: [BillingEvent]
    }

    /// A change recorded about the reader or by them: when, what, and by whom in kind only
    /// (`you`, `staff`, `system`, a provider): staff names and the entries' details (admin
    /// token ids, other accounts) are other people's data.
    public struct Change: Encodable, Sendable {
        public var at: Date
        public var action: String
        public var by: String
    }

    /// A session that has ended: the device, when it began and ended.
    public struct EndedSession: Encodable, Sendable {
        public var deviceName: String?
        public var startedAt: Date
        public var endedAt: Date
    }

    /// A message to the reader's address: never its body (a waiting one holds a live link).
    public struct Mail: Encodable, Sendable {
        public var to: String
        public var subject: String
        public var queuedAt: Date
        public var sentAt: Date?
    }

    public var generatedAt: Date
    public var account: AccountView
    public var memberships: [MembershipView]
    public var trial: TrialView?
    /// A trial of an earlier, deleted account at this address, kept against the person.
    public var earlierTrial: TrialView?
    public var sessions: [SessionView]
    public var endedSessions: [EndedSession]
    public var reads: [Read]
    public var giftReads: [GiftRead]
    public var gifts: [GivenGift]
    public var billing: Billing
    public var audit: [Change]
    public var mail: [Mail]
    public var pendingLinks: [PendingLinkView]
    public var truncated: Bool

    public init(_ export: AccountExport) {
        let now = export.generatedAt
        generatedAt = now
        account = AccountView(export.account)
        let own = AuditActor.account(export.account.id).rawValue
        // Who changed a membership in kind only, and no reasons: a member of staff's name and
        // free text (which can name another reader) are not the reader's data.
        memberships = export.memberships.map { record in
            var view = MembershipView(record.membership, now: now, history: record.history)
            view.history = view.history?.map { change in
                var change = change
                change.actor = Self.kind(of: AuditActor(rawValue: change.actor), own: own)
                change.reason = nil
                return change
            }
            return view
        }
        trial = export.trial.map { TrialView($0, now: now) }
        earlierTrial = export.earlierTrial.map { TrialView($0, now: now) }
        sessions = export.sessions.map(SessionView.init)
        endedSessions = export.endedSessions.map { EndedSession(deviceName: $0.deviceName, startedAt: $0.startedAt, endedAt: $0.endedAt) }
        reads = export.reads.map { Read(title: $0.titleID.rawValue, article: $0.articleID, at: $0.at) }
        giftReads = export.giftReads.map { GiftRead(gift: $0.giftID, title: $0.titleID.rawValue, article: $0.articleID, at: $0.at) }
        gifts = export.gifts.map { GivenGift(id: $0.id, title: $0.titleID.rawValue, article: $0.articleID, createdAt: $0.createdAt, expiresAt: $0.expiresAt) }
        let overview = BillingOverviewView(export.billing)
        billing = Billing(
            links: overview.links, subscriptions: overview.subscriptions,
            events: export.billing.events.map {
                BillingEvent(provider: $0.provider.rawValue, event: $0.eventID, type: $0.type, outcome: $0.outcome.rawValue, subscription: $0.subscriptionID, occurredAt: $0.occurredAt)
            })
        audit = export.audit.map { Change(at: $0.at, action: $0.action, by: Self.kind(of: $0.actor, own: own)) }
        mail = export.mail.map { Mail(to: $0.recipient, subject: $0.subject, queuedAt: $0.createdAt, sentAt: $0.sentAt) }
        pendingLinks = export.pendingLinks.map(PendingLinkView.init)
        truncated = export.truncated
    }
}

extension AccountExportView {
    /// The export as the file a reader keeps: its name and its JSON. Both adapters call it
    /// on the service's blocking pool: years of reads make megabytes, no work for the
    /// cooperative threads that answer access checks.
    public static func file(_ export: AccountExport, pretty: Bool) throws(ServiceError) -> (name: String, bytes: Data) {
        do {
            return (export.fileName, try ViewEncoding.encoder(pretty: pretty).encode(AccountExportView(export)))
        } catch {
            throw ServiceError.wrapping(error)  // an internal error (never seen: strings, dates and integers)
        }
    }
}
