import Foundation
import PaywallCore
import PaywallStore

/// A reader signed in on the web pages: the account a session cookie's refresh token opens.
public struct WebReader: Sendable {
    public var account: Account
    public var session: RefreshSession
}

/// What the reader's account page shows, read in one place so the web module only renders.
public struct ReaderSummary: Sendable {
    public struct MembershipLine: Sendable {
        public var membership: Membership
        /// The plan's name (its id if the plan is gone).
        public var planName: String
        /// The status in effect now (a period that has ended is "expired" whatever is stored).
        public var status: MembershipStatus
    }

    /// The policy's meter as it stands for this reader.
    public struct MeterLine: Sendable {
        public var name: String
        public var used: Int
        public var limit: Int
        public var remaining: Int { used >= limit ? 0 : limit - max(used, 0) }
        /// The rolling window, in seconds.
        public var window: TimeInterval
        /// When the oldest counted read leaves the window (a unit frees up), if any is counted.
        public var resetsAt: Date?
    }

    public var account: Account
    public var memberships: [MembershipLine]
    public var trial: Trial?
    public var trialStatus: Trial.Status?
    /// Whole days left of an active trial, rounded up (nil when there is no active trial).
    public var trialDaysLeft: Int?
    /// Whether the person may still start their one free trial.
    public var trialEligible: Bool
    public var meter: MeterLine?
    /// Sessions in use (one per signed-in device), most recently used first.
    public var sessions: [ActiveSession]
    public var now: Date
}

extension PaywallService {
    /// The key the web pages sign their forms' CSRF fields with: one for every server on
    /// this database (``Store/siteSecret(_:)``), made by the first.
    public func webFormKey() throws(ServiceError) -> [UInt8] {
        try mapped { try store.siteSecret("web-forms") }
    }

    /// The reader a web session cookie names, without rotating its refresh token: pages are
    /// read far more often than a session is renewed, and a rotation per page view would be a
    /// durable write per view (and would race between a reader's tabs); its use is noted
    /// instead, at most hourly (``noteWebSessionUse(_:)``). Nil when the token opens no
    /// usable session (signed out, expired, revoked, unknown) or the account is gone.
    /// A cookie whose token was rotated through the API (a stolen copy used as an app's
    /// refresh token) revokes its whole session family here (``Store/revokeIfRotated(webToken:)``).
    public func webReader(refreshToken: String) throws(ServiceError) -> WebReader? {
        try mapped {
            guard let session = try store.session(token: refreshToken) else {
                try store.revokeIfRotated(webToken: refreshToken)
                return nil
            }
            guard let account = try store.account(id: session.accountID) else { return nil }
            return WebReader(account: account, session: session)
        }
    }

    /// Notes a page seen with the reader's session (``Store/noteWebSessionUse(_:lifetime:)``:
    /// last used, and the expiry moved on as an app's refresh moves it, at most hourly).
    /// Returns the new expiry when it moved, for the cookie.
    public func noteWebSessionUse(_ reader: WebReader) throws(ServiceError) -> Date? {
        try mapped { try store.noteWebSessionUse(reader.session, lifetime: configuration.sessionLifetime) }
    }

    /// The account page's facts: memberships with their plans, the trial and whether one may
    /// be started, and the policy's meter for the reader (the first meter the policy declares:
    /// the signed-in readers' free articles).
    public func readerSummary(account id: AccountID) throws(ServiceError) -> ReaderSummary {
        let at = now
        let policy = try policy()
        return try mapped {
            guard let account = try store.account(id: id) else { throw StoreError.accountNotFound(id.rawValue) }
            let memberships = try store.memberships(accountID: id).map { membership in
                ReaderSummary.MembershipLine(
                    membership: membership, planName: try store.plan(id: membership.planID)?.name ?? membership.planID.rawValue,
                    status: membership.effectiveStatus(at: at))
            }
            let trial = try store.trial(accountID: id)
            let trialStatus = trial?.status(at: at)
            var daysLeft: Int?
            if let trial, trialStatus == .active {
                daysLeft = Int((trial.endsAt.timeIntervalSince(at) / 86_400).rounded(.up))
            }
            var meter: ReaderSummary.MeterLine?
            if let definition = policy.meters.first {
                let usage = try store.meterUsage(subject: .account(id), window: definition.window, at: at)
                let oldest = try store.oldestCountedRead(subject: .account(id), window: definition.window, at: at)
                meter = ReaderSummary.MeterLine(
                    name: definition.name, used: usage.used, limit: definition.limit, window: definition.window,
                    resetsAt: oldest?.addingTimeInterval(definition.window))
            }
            return ReaderSummary(
                account: account, memberships: memberships, trial: trial, trialStatus: trialStatus, trialDaysLeft: daysLeft,
                trialEligible: try trialEligible(account), meter: meter,
                sessions: try store.sessionsInUse(accountID: id).sorted { $0.lastUsedAt > $1.lastUsedAt }, now: at)
        }
    }
}
