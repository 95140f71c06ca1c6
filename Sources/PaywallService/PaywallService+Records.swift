import Foundation
import PaywallCore
import PaywallStore

/// An account with its trial and memberships, as an admin or the reader sees it.
public struct AccountDetail: Sendable {
    public var account: Account
    public var trial: Trial?
    /// Whether the person may still start a free trial (one per person, ever).
    public var trialEligible: Bool
    public var memberships: [Membership]
    /// The devices signed in, most recently used first: what support looks at before
    /// signing a reader out everywhere.
    public var sessions: [ActiveSession]
    /// The links mailed to the account and not used yet (never their tokens): whether a
    /// reset or confirmation link went out, and whether an email change can still be undone.
    public var pendingLinks: [Store.PendingLink]
}

/// A membership with its status history, oldest change first.
public struct MembershipRecord: Sendable {
    public var membership: Membership
    public var history: [MembershipStatusChange]
}

/// Reads counted by a meter for one reader.
public struct MeterReport: Sendable {
    public var subject: MeterSubject
    public var title: TitleID?
    public var usage: MeterUsage
}

/// The state of the database: integrity, schema and sizes.
public struct DatabaseReport: Sendable {
    public var path: String
    public var health: StoreHealth
    public var knownMigrations: [String]
    public var accounts: Int
    public var auditEntries: Int
}

extension PaywallService {
    // MARK: - Accounts

    /// An account with its trial, trial eligibility and memberships.
    public func accountDetail(_ reference: String) throws(ServiceError) -> AccountDetail {
        try mapped {
            let account = try store.account(matching: reference)
            return AccountDetail(
                account: account, trial: try store.trial(accountID: account.id),
                trialEligible: try trialEligible(account),
                memberships: try store.memberships(accountID: account.id),
                sessions: try store.sessionsInUse(accountID: account.id), pendingLinks: try store.pendingLinks(accountID: account.id))
        }
    }

    /// Whether the account's person may still start a trial.
    func trialEligible(_ account: Account) throws -> Bool {
        // The account's own trial too: taken under an address it has since left, it is not
        // the new address's person's.
        try store.trial(accountID: account.id) == nil && store.isTrialEligible(email: EmailAddress(stored: account.email))
    }

    /// Accounts ordered by creation, `limit` at a time after the row `offset`.
    public func accounts(limit: Int, offset: Int) throws(ServiceError) -> [Account] {
        guard (1...100_000).contains(limit) else {
            throw .invalidInput(.invalidValue(field: "limit", value: String(limit), expected: "1 to 100000"))
        }
        guard offset >= 0 else { throw .invalidInput(.invalidValue(field: "offset", value: String(offset), expected: "0 or more")) }
        return try mapped { try store.accounts(limit: limit, offset: offset) }
    }

    /// Accounts whose email starts with `prefix` (any case), in email order, at most
    /// `limit` (1 to 1000): support finding a reader from the part of the address they know.
    public func accounts(emailPrefix raw: String, limit: Int) throws(ServiceError) -> [Account] {
        try accountsFound(emailPrefix: raw, limit: limit).accounts
    }

    /// The same for an admin API call (audited as `admin.accounts.search`, with the prefix).
    public func accounts(emailPrefix raw: String, limit: Int, by admin: AdminPrincipal) throws(ServiceError) -> [Account] {
        let (prefix, found) = try accountsFound(emailPrefix: raw, limit: limit)
        return try auditedRead(admin, "admin.accounts.search", target: "accounts", details: ["emailPrefix": prefix, "found": String(found.count)]) { found }
    }

    /// The search and the prefix it searched for (trimmed, lower-cased).
    private func accountsFound(emailPrefix raw: String, limit: Int) throws(ServiceError) -> (prefix: String, accounts: [Account]) {
        let prefix = raw.trimmingCharacters(in: .whitespaces).lowercased()
        // Addresses are printable ASCII (``EmailAddress``): a prefix with anything else
        // matches nothing, and is said to be wrong rather than found empty.
        guard !prefix.isEmpty, prefix.utf8.count <= 254, prefix.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw .invalidInput(.invalidValue(field: "email", value: String(raw.prefix(64)), expected: "the start of an email address: 1 to 254 printable ASCII characters"))
        }
        guard (1...1_000).contains(limit) else {
            throw .invalidInput(.invalidValue(field: "limit", value: String(limit), expected: "1 to 1000"))
        }
        return (prefix, try mapped { try store.accounts(emailPrefix: prefix, limit: limit) })
    }

    /// Marks an account's email address verified (an admin who checked it by other means,
    /// or later the verification link). Policies see it as `user.emailVerified`.
    public func markEmailVerified(account reference: String, method: String, actor: AuditActor) throws(ServiceError) -> Account {
        try mapped {
            let account = try store.account(matching: reference)
            return try store.markEmailVerified(accountID: account.id, actor: actor, method: method)
        }
    }

    /// An account's memberships, each with its status history.
    public func membershipRecords(account reference: String) throws(ServiceError) -> (Account, [MembershipRecord]) {
        try mapped {
            let account = try store.account(matching: reference)
            let records = try store.memberships(accountID: account.id).map {
                MembershipRecord(membership: $0, history: try store.membershipHistory(id: $0.id))
            }
            return (account, records)
        }
    }

    // MARK: - Catalog

    /// The titles in the catalog, by id; with `includingRetired`, also those that left it.
    public func titles(includingRetired: Bool = false) throws(ServiceError) -> [Title] {
        try mapped { try store.titles().filter { includingRetired || !$0.isRetired } }
    }

    /// Every plan, by id.
    public func plans() throws(ServiceError) -> [Plan] {
        try mapped { try store.plans() }
    }

    // MARK: - Meters

    /// The reader named by an account reference or a device id (exactly one).
    public func meterSubject(account: String?, device: String?) throws(ServiceError) -> MeterSubject {
        try mapped {
            switch (account, device) {
            case let (account?, nil): return .account(try store.account(matching: account).id)
            case let (nil, device?): return try MeterSubject.device(validating: device)
            default: throw DomainError.invalidValue(field: "reader", value: "", expected: "exactly one of an account and a device id")
            }
        }
    }

    /// Distinct articles `subject` read in the rolling `window` up to now, optionally of one title.
    public func meterReport(subject: MeterSubject, window: TimeInterval, title: String?) throws(ServiceError) -> MeterReport {
        try mapped {
            guard window > 0, window <= TimeText.maximumDuration else {
                throw DomainError.invalidValue(field: "window", value: "\(window)s", expected: "more than 0 and at most 100 years")
            }
            let titleID = try title.map { try TitleID(validating: $0) }
            // An unknown title would count 0 and look like an answer (a typo, not a reader
            // who read nothing there): refused, as recording a read of it is.
            if let titleID, try store.title(id: titleID) == nil { throw StoreError.titleNotFound(titleID.rawValue) }
            return MeterReport(subject: subject, title: titleID, usage: try store.meterUsage(subject: subject, window: window, title: titleID))
        }
    }

    /// Checks one imported read (title and article ids; the time defaults to now).
    public func articleRead(subject: MeterSubject, title: String, article: String, at: Date?) throws(ServiceError) -> ArticleRead {
        // A read dated ahead would count nowhere until its time came, and then spend one of
        // the reader's free articles unseen. A minute of clock skew between hosts is allowed.
        if let at, at > now.addingTimeInterval(60) {
            throw .invalidInput(.invalidValue(field: "at", value: TimeText.format(at), expected: "a time no later than now"))
        }
        return try mapped {
            ArticleRead(
                subject: subject, titleID: try TitleID(validating: title),
                articleID: try ArticleRead.validateArticleID(article), at: at ?? now)
        }
    }

    /// Stores reads in one transaction: all or none, audited as `meter.import` by `actor`
    /// in it (they count in the reads report publishers are paid on).
    public func importReads(_ reads: [ArticleRead], actor: AuditActor) throws(ServiceError) {
        try mapped { try store.recordReads(reads, actor: actor) }
    }

    // MARK: - Audit and the database

    /// Audit entries, newest first, about one account (by reference) or one target.
    public func auditEntries(account: String? = nil, target: String? = nil, limit: Int) throws(ServiceError) -> [AuditEntry] {
        try auditEntries(filter: AuditFilter(target: target), account: account, limit: limit)
    }

    /// Audit entries matching `filter` (actor, action or action prefix, target, period),
    /// newest first; `account` (an email or id) stands for its `account:<id>` target.
    public func auditEntries(filter: AuditFilter, account: String?, limit: Int) throws(ServiceError) -> [AuditEntry] {
        guard (1...100_000).contains(limit) else {
            throw .invalidInput(.invalidValue(field: "limit", value: String(limit), expected: "1 to 100000"))
        }
        let filter = try resolvedAuditFilter(filter, account: account)
        return try mapped { try store.auditEntries(filter: filter, limit: limit) }
    }

    /// `filter` with `account` (an email or id) as its `account:<id>` target, and its period
    /// checked: what the CLI's and the admin API's audit lists share.
    func resolvedAuditFilter(_ filter: AuditFilter, account: String?) throws(ServiceError) -> AuditFilter {
        var filter = filter
        if let account {
            guard filter.target == nil else { throw .invalidInput(.invalidValue(field: "filter", value: "account and target", expected: "at most one of them")) }
            filter.target = "account:\(try self.account(account).id)"
        }
        if let since = filter.since, let until = filter.until, since >= until {
            throw .invalidInput(.invalidValue(field: "until", value: TimeText.format(until), expected: "later than since"))
        }
        return filter
    }

    /// Integrity, foreign keys, schema version and sizes.
    public func databaseReport() throws(ServiceError) -> DatabaseReport {
        try mapped {
            DatabaseReport(
                path: store.location, health: try store.health(), knownMigrations: Store.knownMigrations,
                accounts: try store.accountCount(), auditEntries: try store.auditCount())
        }
    }

    /// Migrations applied to the database, in order (opening the service applied any pending).
    public func appliedMigrations() throws(ServiceError) -> [String] {
        try mapped { try store.appliedMigrations() }
    }

    /// Copies the database, consistently and while in use, to a new file; audited.
    public func backup(to destination: String, actor: AuditActor) throws(ServiceError) {
        try mapped {
            try store.backup(to: destination)
            try store.recordAudit(actor: actor, action: "db.backup", target: "db", details: ["destination": destination])
        }
    }

    /// Deletes expired sessions, links and sent mail (``Store/prune(at:)``). The server runs
    /// it every hour; `paywall db prune` on demand. Audited when it deleted anything.
    @discardableResult
    public func prune(actor: AuditActor) throws(ServiceError) -> PruneReport {
        try mapped {
            let report = try store.prune(at: now)
            if report.total > 0 {
                try store.recordAudit(actor: actor, action: "db.prune", target: "db",
                    details: Dictionary(uniqueKeysWithValues: report.counts.map { ($0.name, String($0.count)) }))
            }
            return report
        }
    }
}
