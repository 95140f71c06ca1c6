import Foundation
import PaywallCore
import PaywallStore

/// Everything stored about one reader, for them (the GDPR's right of access and to data
/// portability: `POST /v1/me/export`, the account page, `paywall account export`).
public struct AccountExport: Sendable {
    public var generatedAt: Date
    public var account: Account
    public var memberships: [MembershipRecord]
    public var trial: Trial?
    /// A trial an earlier, deleted account at the same address took: it is kept against the
    /// person (one trial per person) and is why this account may start none. Only once this
    /// account's address is confirmed.
    public var earlierTrial: Trial?
    public var sessions: [ActiveSession]
    /// Sessions ended and still on record (a week after they expire), most recent first.
    public var endedSessions: [Store.EndedSession]
    /// Their recorded reads, newest first (at most ``PaywallService/exportLimit``).
    public var reads: [ArticleRead]
    /// Articles they read through others' gift links, newest first.
    public var giftReads: [Store.GiftRead]
    /// The articles they gave, newest first.
    public var gifts: [Gift]
    public var billing: PaywallService.BillingOverview
    /// What the audit log holds about the account or done by it, newest first. Whole here:
    /// the reader's view (``AccountExportView``) says who in kind only and leaves out the
    /// details, which can name staff, admin tokens and other accounts.
    public var audit: [AuditEntry]
    /// Mail about the account (to whichever address it had then), newest first, without bodies.
    public var mail: [OutboxMessage]
    /// Links mailed to the account and not used yet (never their tokens).
    public var pendingLinks: [Store.PendingLink]
    /// Whether a list stopped at ``PaywallService/exportLimit`` (the newest are kept).
    public var truncated: Bool

    /// `paywall-data-<account id>.json` (the id: letters, digits and dashes; safe in a header).
    public var fileName: String { "paywall-data-\(account.id.rawValue).json" }
}

extension PaywallService {
    /// The most rows of one kind an export holds: a reader's lifetime of reads fits many
    /// times over, and one request cannot make the server build an unbounded answer.
    public static let exportLimit = 50_000

    /// A signed-in reader's own data, with their password again (held to the sign-in
    /// throttle): their reading history is theirs, and an access token copied for a few
    /// minutes must not carry it away. Audited as `account.export`.
    public func exportOwnData(accountID: AccountID, password: String, client: String) throws(ServiceError) -> AccountExport {
        let account = try ownAccount(accountID)
        let verified = try reverified(account, password: password, client: client)
        // Each export reads every row about the reader and builds a file of it: three,
        // then one an hour, per account (on every server together).
        if let wait = try mapped({ try store.takeRateToken(Self.exports, key: accountID.rawValue) }) { throw .tooManyExports(retryAfter: wait) }
        return try export(verified, actor: .account(accountID))
    }

    /// A reader's data for an admin answering a request by other means (`paywall account
    /// export`), audited as `account.export` with the admin.
    public func exportAccount(_ reference: String, actor: AuditActor) throws(ServiceError) -> AccountExport {
        try export(try account(reference), actor: actor)
    }

    private func export(_ account: Account, actor: AuditActor) throws(ServiceError) -> AccountExport {
        let limit = Self.exportLimit
        return try mapped {
            let export = try store.snapshot { () throws -> AccountExport in try exportRecords(account, limit: limit) }
            try store.recordAudit(actor: actor, action: "account.export", target: "account:\(account.id)", details: [
                "reads": String(export.reads.count), "truncated": String(export.truncated),
            ])
            return export
        }
    }

    /// Every list of the export, read in one snapshot (``Store/snapshot(_:)``): a membership
    /// changed or a session ended while the file is made shows in all of it or in none.
    private func exportRecords(_ found: Account, limit: Int) throws -> AccountExport {
        let id = found.id
        // Again in the snapshot: the account as of the rest (deleted meanwhile: not found).
        guard let account = try store.account(id: id) else { throw StoreError.accountNotFound(id.rawValue) }
        let memberships = try store.memberships(accountID: id).map {
            MembershipRecord(membership: $0, history: try store.membershipHistory(id: $0.id))
        }
        let reads = try store.reads(subject: .account(id), limit: limit + 1)
        let gifts = try store.gifts(accountID: id, limit: limit + 1)
        let giftReads = try store.giftReads(subject: .account(id), limit: limit + 1)
        let trial = try store.trial(accountID: id)
        // About the account (`account:…`) and by it (gifts, its own sign-outs).
        let about = try store.auditEntries(filter: AuditFilter(target: "account:\(id)"), limit: limit + 1)
        let by = try store.auditEntries(filter: AuditFilter(actor: AuditActor.account(id).rawValue), limit: limit + 1)
        var seen = Set<Int64>()
        let audit = (about + by).filter { seen.insert($0.id).inserted }.sorted { $0.id > $1.id }
        let billing = BillingOverview(
            account: account, links: try store.billingLinks(accountID: id), subscriptions: try store.billingSubscriptions(accountID: id),
            events: Array(try store.billingEvents(accountID: id, limit: limit + 1)))
        let eventsCut = billing.events.count > limit
        var trimmed = billing
        trimmed.events = Array(billing.events.prefix(limit))
        let mail = try store.mail(accountID: id, limit: limit + 1)
        let export = AccountExport(
            generatedAt: now, account: account, memberships: memberships, trial: trial,
            // Only to a reader who proved the address theirs: anyone may sign up at an address
            // like it (the person key drops `+tags`), and must not learn that a deleted
            // account was there and when its trial ran.
            earlierTrial: trial == nil && account.emailVerifiedAt != nil ? try store.earlierTrial(personKey: EmailAddress(stored: account.email).personKey) : nil,
            sessions: try store.sessionsInUse(accountID: id), endedSessions: try store.endedSessions(accountID: id), reads: Array(reads.prefix(limit)),
            giftReads: Array(giftReads.prefix(limit)), gifts: Array(gifts.prefix(limit)),
            billing: trimmed, audit: Array(audit.prefix(limit)), mail: Array(mail.prefix(limit)),
            pendingLinks: try store.pendingLinks(accountID: id),
            truncated: reads.count > limit || giftReads.count > limit || gifts.count > limit || audit.count > limit || eventsCut || mail.count > limit)
        return export
    }
}
