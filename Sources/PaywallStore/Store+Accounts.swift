import Foundation
import PaywallCore

extension Account {
    static let columns = "id, email, display_name, created_at, updated_at, email_verified_at, sign_outs_everywhere"

    init(row: SQLRow) {
        self.init(
            id: AccountID(rawValue: row[0]),
            email: row[1],
            displayName: row[2],
            emailVerifiedAt: (row[5] as Int64?).map(Date.init(millis:)),
            createdAt: Date(millis: row[3]),
            updatedAt: Date(millis: row[4]),
            signOutsEverywhere: row[6]
        )
    }
}

extension Store {
    /// Creates an account with an already hashed password. Throws
    /// ``StoreError/duplicateEmail(_:)`` when the (case-insensitive) email is taken.
    public func createAccount(
        email: EmailAddress, displayName: String?, passwordHash: String, actor: AuditActor
    ) throws(StoreError) -> Account {
        let now = clock.now()
        let account = Account(id: .generate(), email: email.value, displayName: displayName, createdAt: now, updatedAt: now)
        return try write { db in
            try insertAccount(db, account, emailKey: email.lookupKey, passwordHash: passwordHash, actor: actor)
            return account
        }
    }

    /// Inserts a new account and its credentials inside the caller's write transaction,
    /// audited; refuses a taken email.
    func insertAccount(_ db: any SQLConnection, _ account: Account, emailKey: String, passwordHash: String, actor: AuditActor) throws {
        if try Self.account(db, emailKey: emailKey) != nil { throw StoreError.duplicateEmail(account.email) }
        try Self.refuseKeptAddress(db, email: account.email, emailKey: emailKey, forOtherThan: nil, now: account.createdAt)
        do {
            try db.execute("""
                INSERT INTO accounts (id, email, email_key, display_name, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """, [account.id.rawValue, account.email, emailKey, account.displayName, account.createdAt.millis, account.updatedAt.millis])
        } catch where SQLConstraint.violated(by: error) == .unique {
            // A concurrent sign-up (another server, READ COMMITTED) took the email first.
            throw StoreError.duplicateEmail(account.email)
        }
        try db.execute("INSERT INTO credentials (account_id, password_hash, updated_at) VALUES (?, ?, ?)", [account.id.rawValue, passwordHash, account.createdAt.millis])
        try audit(db, actor: actor, action: "account.create", target: "account:\(account.id)", details: ["email": account.email])
    }

    /// The account with this id, or nil.
    public func account(id: AccountID) throws(StoreError) -> Account? {
        try cachedFact(group: "account:\(id.rawValue)", key: "account") {
            () throws(StoreError) -> Account? in try readHot { hot in try hot.account(id: id.rawValue) }
        }
    }

    /// What an access check reads of an account, as one cached fact (``AccountFacts``), or
    /// nil when there is no such account. Read in one snapshot; invalidated with the account.
    public func accountFacts(id: AccountID) throws(StoreError) -> AccountFacts? {
        try cachedFact(group: "account:\(id.rawValue)", key: "facts") { () throws(StoreError) -> AccountFacts? in
            do {
                return try snapshot { () throws -> AccountFacts? in
                    try readHot { hot in try hot.facts(accountID: id.rawValue) }.map { account, memberships, trial in
                        AccountFacts(account: account, memberships: memberships.map(MembershipWithBundle.init), trial: trial)
                    }
                }
            } catch let error as StoreError {
                throw error
            } catch {
                throw backend.storeError(error)
            }
        }
    }

    /// The account with this email (compared case-insensitively), or nil.
    public func account(email: EmailAddress) throws(StoreError) -> Account? {
        try account(emailKey: email.lookupKey)
    }

    /// The account whose lower-cased email is `emailKey`, or nil.
    public func account(emailKey: String) throws(StoreError) -> Account? {
        try readHot { hot in try hot.account(emailKey: emailKey) }
    }

    /// The account with this id, read in the caller's transaction; `lockingRow`: `FOR
    /// UPDATE` on PostgreSQL (SQLite's writer holds the whole file).
    static func account(_ db: any SQLConnection, id: AccountID, lockingRow: Bool = false) throws -> Account? {
        let lock = lockingRow && db.dialect == .postgres ? " FOR UPDATE" : ""
        return try db.fetchOne(PlainHotQueries.accountByIDSQL + lock, [id.rawValue]).map(Account.init(row:))
    }

    static func account(_ db: any SQLConnection, emailKey: String) throws -> Account? {
        try db.fetchOne(PlainHotQueries.accountByEmailSQL, [emailKey])
            .map(Account.init(row:))
    }

    /// Resolves an account reference typed by an admin: an account id or an email.
    /// Throws ``StoreError/accountNotFound(_:)``.
    public func account(matching reference: String) throws(StoreError) -> Account {
        let ref = reference.trimmingCharacters(in: .whitespacesAndNewlines)
        if AccountID.looksLikeID(ref), let found = try account(id: AccountID(rawValue: ref.lowercased())) {
            return found
        }
        if let found = try account(emailKey: ref.lowercased()) { return found }
        throw .accountNotFound(ref)
    }

    /// Accounts ordered by creation, `limit` at a time after the row `offset`.
    public func accounts(limit: Int = 100, offset: Int = 0) throws(StoreError) -> [Account] {
        try read { db in
            try db.fetchAll("SELECT \(Account.columns) FROM accounts ORDER BY created_at, id LIMIT ? OFFSET ?", [max(0, limit), max(0, offset)]
            ).map(Account.init(row:))
        }
    }

    /// Accounts whose (lower-cased) email starts with `prefix`, in email order, at most
    /// `limit`: support looking a reader up by the part of the address they know. A range
    /// on `email_key` in byte order, `[prefix, prefix + DEL)`, which holds exactly the keys
    /// with that prefix (keys are ASCII below DEL: ``EmailAddress``), served by an index on
    /// both backends (SQLite's BINARY unique index; PostgreSQL's `COLLATE "C"` one, v19).
    public func accounts(emailPrefix prefix: String, limit: Int) throws(StoreError) -> [Account] {
        try read { db in
            let key = db.dialect == .postgres ? #"email_key COLLATE "C""# : "email_key"
            return try db.fetchAll(
                "SELECT \(Account.columns) FROM accounts WHERE \(key) >= ? AND \(key) < ? ORDER BY \(key) LIMIT ?",
                [prefix, prefix + "\u{7F}", max(0, limit)]
            ).map(Account.init(row:))
        }
    }

    /// The number of accounts.
    public func accountCount() throws(StoreError) -> Int {
        try read { db in try db.fetchValue(Int.self, "SELECT COUNT(*) FROM accounts") ?? 0 }
    }

    /// The stored password hash of an account, or nil when it has none.
    public func passwordHash(accountID: AccountID) throws(StoreError) -> String? {
        try read { db in
            try db.fetchValue(String.self, "SELECT password_hash FROM credentials WHERE account_id = ?", [accountID.rawValue])
        }
    }

    /// Replaces a hash made with weaker parameters by `upgraded`, of the same password, at
    /// sign-in (audited `account.rehash-password`; reset links stay: the owner asked for
    /// nothing). Only while `checked` is still the account's hash: a new password set
    /// since the check (a reset) must not be overwritten with the old one's upgrade (found
    /// in review). Returns whether it was replaced.
    public func upgradePasswordHash(accountID: AccountID, checked: String, upgraded: String) throws(StoreError) -> Bool {
        let now = clock.now()
        return try write { db in
            let changed = try db.execute(
                "UPDATE credentials SET password_hash = ?, updated_at = ? WHERE account_id = ? AND password_hash = ?",
                [upgraded, now.millis, accountID.rawValue, checked])
            guard changed == 1 else { return false }
            try db.execute("UPDATE accounts SET updated_at = ? WHERE id = ?", [now.millis, accountID.rawValue])
            try audit(db, actor: .system, action: "account.rehash-password", target: "account:\(accountID)")
            return true
        }
    }

    /// Replaces an account's password hash. `action` names the reason in the audit log
    /// (`account.set-password` unless told).
    /// With `revokeSessions`, every usable session of the account is revoked in the same
    /// transaction (audited as `session.revoke-all`): either both happen or neither.
    /// Returns the number of sessions revoked.
    @discardableResult
    /// `notice`: a mail to queue in the same transaction (the reader's own change tells
    /// their address).
    public func setPasswordHash(
        accountID: AccountID, hash: String, actor: AuditActor, action: String = "account.set-password", revokeSessions: Bool = false,
        notice: OutgoingMail? = nil
    ) throws(StoreError) -> Int {
        let now = clock.now()
        return try write { db in
            try Self.requireAccount(db, accountID)
            try db.execute("""
                INSERT INTO credentials (account_id, password_hash, updated_at) VALUES (?, ?, ?)
                ON CONFLICT(account_id) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at
                """, [accountID.rawValue, hash, now.millis])
            try db.execute("UPDATE accounts SET updated_at = ? WHERE id = ?", [now.millis, accountID.rawValue])
            // A new password voids the reset links mailed before it: one read later from a
            // forwarded or shared mailbox set a password of its own over the owner's (or
            // support's, after a compromise) (found in review). A rehash at sign-in, which
            // the owner did not ask for, is ``upgradePasswordHash(accountID:checked:upgraded:)``.
            try db.execute("DELETE FROM email_links WHERE account_id = ? AND purpose = ?", [accountID.rawValue, EmailLinkPurpose.resetPassword.rawValue])
            try audit(db, actor: actor, action: action, target: "account:\(accountID)")
            if let notice { try Self.queueNotice(db, notice, for: accountID, at: now) }
            return revokeSessions ? try self.revokeSessions(db, accountID: accountID, actor: actor, now: now) : 0
        }
    }

    /// Records that the account's email address is verified (idempotent: the first
    /// verification time stays). Returns the account as stored.
    public func markEmailVerified(accountID: AccountID, actor: AuditActor, method: String) throws(StoreError) -> Account {
        let now = clock.now().millis
        return try write { db in
            let email = try Self.requireAccount(db, accountID)
            try db.execute("UPDATE accounts SET email_verified_at = COALESCE(email_verified_at, ?), updated_at = ? WHERE id = ?", [now, now, accountID.rawValue])
            try audit(db, actor: actor, action: "account.verify-email", target: "account:\(accountID)", details: ["email": email, "method": method])
            guard let account = try Self.account(db, id: accountID) else { throw StoreError.accountNotFound(accountID.rawValue) }
            return account
        }
    }

    /// Changes an account's email address: the new one unconfirmed (unless it is the same
    /// mailbox respelt, `Ada@` for `ada@`), every link mailed to the old one dead (a reset
    /// link in a mailbox the reader has left must not open the account), audited as
    /// `account.change-email` with the previous address, and `notice` (a mail to the old
    /// address) queued, all in one transaction. Throws ``StoreError/duplicateEmail(_:)``
    /// when another account has the address, also when one takes it concurrently (the
    /// unique index on `email_key`). Returns the account before and after.
    /// `confirmed`: an admin who checked the new address by other means; it is confirmed now.
    ///
    /// `notice` gets the account as it was and, with `offerUndo` when the old address was
    /// confirmed, the token of a link that puts it back (``revertEmail(token:hash:)``, live
    /// for ``emailRevertLifetime``), for the owner of that mailbox if the change was not
    /// theirs. Later changes leave it live (whoever changed the address cannot void it by
    /// changing it again), and while it lives no other account may take the address (a
    /// sign-up with it would otherwise lock its owner out). An address never confirmed gets
    /// no such link: whoever holds it (a typo at sign-up) never proved it was the reader's.
    public func changeEmail(
        accountID: AccountID, to email: EmailAddress, confirmed: Bool = false, actor: AuditActor, offerUndo: Bool = false,
        notice: ((_ previous: Account, _ undoToken: String?) -> OutgoingMail)? = nil
    ) throws(StoreError) -> (previous: Account, current: Account) {
        let now = storedNow()
        // Made before the transaction, which PostgreSQL may run again: one token per change.
        let undo = offerUndo ? try RefreshToken.generate() : nil
        return try write { db in
            guard let previous = try Self.account(db, id: accountID, lockingRow: true) else { throw StoreError.accountNotFound(accountID.rawValue) }
            let sameMailbox = EmailAddress(stored: previous.email).lookupKey == email.lookupKey
            if !sameMailbox {
                if try Self.account(db, emailKey: email.lookupKey) != nil { throw StoreError.duplicateEmail(email.value) }
                try Self.refuseKeptAddress(db, email: email.value, emailKey: email.lookupKey, forOtherThan: accountID, now: now)
            }
            do {
                // Confirmed by an admin: from now (another mailbox's confirmation says nothing
                // of this one); the same mailbox respelt keeps its own.
                let verifiedAt = switch (confirmed, sameMailbox) {
                case (true, false): ", email_verified_at = ?"
                case (true, true): ", email_verified_at = COALESCE(email_verified_at, ?)"
                case (false, false): ", email_verified_at = NULL"
                case (false, true): ""
                }
                try db.execute("UPDATE accounts SET email = ?, email_key = ?, updated_at = ?\(verifiedAt) WHERE id = ?",
                               confirmed ? [email.value, email.lookupKey, now.millis, now.millis, accountID.rawValue]
                                   : [email.value, email.lookupKey, now.millis, accountID.rawValue])
            } catch where SQLConstraint.violated(by: error) == .unique {
                throw StoreError.duplicateEmail(email.value)
            }
            var details = ["previous": previous.email, "email": email.value]
            if confirmed { details["confirmed"] = "admin" }
            if !sameMailbox {
                try db.execute("DELETE FROM email_links WHERE account_id = ?", [accountID.rawValue])
                let expires = now.addingTimeInterval(Self.emailRevertLifetime)
                var undoToken: String?
                if let undo, notice != nil, previous.emailVerifiedAt != nil {
                    try db.execute("DELETE FROM email_reverts WHERE account_id = ? AND expires_at <= ?", [accountID.rawValue, now.millis])
                    try db.execute(
                        "INSERT INTO email_reverts (token_hash, account_id, restores_email, restores_email_key, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                        [Data(RefreshToken.hash(undo.text)), accountID.rawValue, previous.email, EmailAddress(stored: previous.email).lookupKey,
                         now.millis, expires.millis])
                    undoToken = undo.text
                    details["undoUntil"] = TimeText.format(expires)
                } else if !offerUndo {
                    // Support moved the reader (often off a mailbox they lost): no earlier
                    // address may take the account back either.
                    let voided = try db.execute("DELETE FROM email_reverts WHERE account_id = ?", [accountID.rawValue])
                    if voided > 0 { details["undoLinksVoided"] = String(voided) }
                }
                if let notice { try Self.queueMail(db, notice(previous, undoToken), for: accountID, at: now, expires: expires) }
            }
            try audit(db, actor: actor, action: "account.change-email", target: "account:\(accountID)", details: details)
            guard let updated = try Self.account(db, id: accountID) else { throw StoreError.accountNotFound(accountID.rawValue) }
            return (previous, updated)
        }
    }

    /// How long the link that puts an email change's old address back stays live, and the
    /// notice carrying it is kept to be sent: a week, so that an owner away for some days
    /// still finds it working.
    public static let emailRevertLifetime: TimeInterval = 7 * 86_400

    /// Uses the link of an email change's notice (``changeEmail(accountID:to:confirmed:actor:offerUndo:notice:)``):
    /// in one transaction, the address it names becomes the account's again, confirmed (its
    /// owner just opened mail there); the password becomes `hash` (whoever changed the
    /// address had the old one); every session and access token ends; every link mailed
    /// since dies, and so do the undo links of later changes, while those of earlier ones
    /// stay: the oldest address wins (someone who moved the account on, confirmed their
    /// address and moved it again cannot void its owner's link with their own); the address
    /// being replaced is told (`notice`); audited as `account.revert-email` by the account.
    /// Nil when the link is not live (nothing written). Throws
    /// ``StoreError/duplicateEmail(_:)`` when another account has the address (only one
    /// that had it before the link was made: the link keeps it from others while it lives;
    /// nothing written). Returns the account as restored and how many sessions ended.
    public func revertEmail(
        token: String, hash: String, notice: ((_ replaced: Account, _ restored: EmailAddress) -> OutgoingMail)? = nil
    ) throws(StoreError) -> (account: Account, endedSessions: Int)? {
        let now = storedNow()
        return try write { db -> (account: Account, endedSessions: Int)? in
            guard let row = try db.fetchOne(
                "SELECT account_id, restores_email, created_at FROM email_reverts WHERE token_hash = ? AND expires_at > ?",
                [Data(RefreshToken.hash(token)), now.millis])
            else { return nil }
            let accountID = AccountID(rawValue: row[0])
            let restored = EmailAddress(stored: row[1])
            let madeAt: Int64 = row[2]
            guard let current = try Self.account(db, id: accountID, lockingRow: true) else { return nil }
            if let holder = try Self.account(db, emailKey: restored.lookupKey), holder.id != accountID { throw StoreError.duplicateEmail(restored.value) }
            do {
                try db.execute(
                    "UPDATE accounts SET email = ?, email_key = ?, email_verified_at = ?, updated_at = ? WHERE id = ?",
                    [restored.value, restored.lookupKey, now.millis, now.millis, accountID.rawValue])
            } catch where SQLConstraint.violated(by: error) == .unique {
                throw StoreError.duplicateEmail(restored.value)
            }
            try db.execute("UPDATE credentials SET password_hash = ?, updated_at = ? WHERE account_id = ?", [hash, now.millis, accountID.rawValue])
            try db.execute("DELETE FROM email_links WHERE account_id = ?", [accountID.rawValue])
            // This link and later ones (by time: two changes of one account are a password
            // check and a request apart, never in one millisecond).
            try db.execute("DELETE FROM email_reverts WHERE account_id = ? AND created_at >= ?", [accountID.rawValue, madeAt])
            if let notice, EmailAddress(stored: current.email).lookupKey != restored.lookupKey {
                try Self.queueNotice(db, notice(current, restored), for: accountID, at: now)
            }
            let actor = AuditActor.account(accountID)
            try audit(db, actor: actor, action: "account.revert-email", target: "account:\(accountID)", details: [
                "previous": current.email, "email": restored.value,
            ])
            let ended = try revokeSessions(db, accountID: accountID, actor: actor, now: now)
            guard let account = try Self.account(db, id: accountID) else { throw StoreError.accountNotFound(accountID.rawValue) }
            return (account, ended)
        }
    }

    /// Throws ``StoreError/addressKept(email:account:until:)`` when a live undo link of an
    /// account other than `accountID` (any, when nil) keeps the address: it may not be taken
    /// while its owner can still put it back.
    static func refuseKeptAddress(_ db: any SQLConnection, email: String, emailKey: String, forOtherThan accountID: AccountID?, now: Date) throws {
        guard let row = try db.fetchOne(
            "SELECT account_id, expires_at FROM email_reverts WHERE restores_email_key = ? AND expires_at > ? AND account_id <> ? ORDER BY expires_at DESC LIMIT 1",
            [emailKey, now.millis, accountID?.rawValue ?? ""])
        else { return }
        throw StoreError.addressKept(email: email, account: row[0], until: Date(millis: row[1]))
    }

    /// The address a live email-change undo link would put back, without using it (nil:
    /// unknown, used or expired): checked before the password is hashed.
    public func emailRevertAddress(token: String) throws(StoreError) -> String? {
        let now = clock.now()
        return try read { db in
            try db.fetchValue(String.self, "SELECT restores_email FROM email_reverts WHERE token_hash = ? AND expires_at > ?", [Data(RefreshToken.hash(token)), now.millis])
        }
    }

    /// Changes an account's display name.
    public func setDisplayName(accountID: AccountID, displayName: String?, actor: AuditActor) throws(StoreError) {
        let now = clock.now().millis
        try write { db in
            try Self.requireAccount(db, accountID)
            try db.execute("UPDATE accounts SET display_name = ?, updated_at = ? WHERE id = ?", [displayName, now, accountID.rawValue])
            try audit(db, actor: actor, action: "account.rename", target: "account:\(accountID)", details: ["displayName": displayName ?? ""])
        }
    }

    /// Deletes an account with its credentials, memberships, sessions and reads. Its trial
    /// stays recorded against the person (not the account), so re-creating the account
    /// does not earn a second trial.
    ///
    /// Unless `blocking` picks one of the account's memberships, read in the same
    /// transaction (a subscription a payment provider still renews, created a moment ago by
    /// its webhook): then nothing is deleted and that membership is returned.
    @discardableResult
    public func deleteAccount(
        id: AccountID, actor: AuditActor, unlessAny blocking: @escaping (Membership) -> Bool = { _ in false },
        unlessSubscriptionRenews: Bool = false
    ) throws(StoreError) -> AccountDeletionBlocker? {
        // Under the account's meter lock (and on PostgreSQL READ COMMITTED after it): a
        // metered read of this account committing meanwhile is either seen and deleted
        // here, or refused after (its insert checks that the account exists).
        try writeLockingMeters([MeterSubject.account(id).key]) { db -> AccountDeletionBlocker? in
            // The row locked (on PostgreSQL, READ COMMITTED here): a membership a webhook
            // inserts meanwhile holds a key-share lock on it, so this waits for that commit
            // and the memberships read below sees it (`blocking` then keeps the account).
            let email = try Self.requireAccount(db, id, lockingRow: true)
            if let blocker = try Self.memberships(db, accountID: id).first(where: blocking) { return .membership(blocker) }
            // A subscription the provider has not ended and will renew, whatever the
            // membership says: Stripe keeps an `unpaid` or `paused` one open and charges it
            // again once the card works.
            // An App Store subscription that expired (billing retry over, revoked, refunded)
            // does not renew: Apple marks none final, and the reader would have nothing left
            // to cancel.
            if unlessSubscriptionRenews, let row = try db.fetchOne(
                """
                SELECT provider, subscription_id FROM billing_subscriptions
                WHERE account_id = ? AND final = 0 AND cancel_at_period_end = 0 AND (provider = 'stripe' OR status != 'expired')
                ORDER BY provider, subscription_id LIMIT 1
                """,
                [id.rawValue])
            {
                return .subscription(provider: row[0], id: row[1])
            }
            // Its metered reads stay counted for their titles (the reads report is what
            // publishers are paid on, and a month already paid must not change when a reader
            // leaves; found in review), no longer as theirs: under one pseudonym made for this
            // deletion, which names no one, meters no one and keeps the distinct readers' count.
            try db.execute("UPDATE reads SET subject = ? WHERE subject = ?", ["deleted:" + UUID().uuidString.lowercased(), MeterSubject.account(id).key])
            // Its sign-in throttle rows name the address (and the account).
            try db.execute("DELETE FROM sign_in_failures WHERE key IN (?, ?)", [Self.signInThrottleKey(email: EmailAddress(stored: email)), Self.reverificationThrottleKey(id)])
            // The reader's reads through gift links stay counted for the title (what its
            // publisher is paid on), no longer as theirs: each under a subject of its own
            // that names no one (NULL is the anonymous readers' one row per gift, which a
            // later anonymous reader would then not get).
            try db.execute("UPDATE gift_reads SET subject = 'deleted:' || id WHERE subject = ?", [MeterSubject.account(id).key])
            // Mail not sent yet is never sent (a verification or reset link to an account
            // that is gone); mail sent keeps its address, subject and time, without the body
            // or the account, until pruned: the per-address mail budget counts it.
            try db.execute("DELETE FROM outbox WHERE account_id = ? AND sent_at IS NULL", [id.rawValue])
            try db.execute("UPDATE outbox SET body = '', account_id = NULL WHERE account_id = ?", [id.rawValue])
            try db.execute("DELETE FROM rate_limits WHERE key = ?", [id.rawValue])
            try db.execute("DELETE FROM accounts WHERE id = ?", [id.rawValue])
            try audit(db, actor: actor, action: "account.delete", target: "account:\(id)", details: ["email": email])
            return nil
        }
    }

    /// Throws ``StoreError/accountNotFound(_:)`` unless the account exists; returns its email.
    /// `lockingRow`: `FOR UPDATE` on PostgreSQL (SQLite's writer holds the whole file).
    @discardableResult
    static func requireAccount(_ db: any SQLConnection, _ id: AccountID, lockingRow: Bool = false) throws -> String {
        let lock = lockingRow && db.dialect == .postgres ? " FOR UPDATE" : ""
        guard let email = try db.fetchValue(String.self, "SELECT email FROM accounts WHERE id = ?" + lock, [id.rawValue]) else {
            throw StoreError.accountNotFound(id.rawValue)
        }
        return email
    }
}


/// Why ``Store/deleteAccount(id:actor:unlessAny:unlessSubscriptionRenews:)`` kept an account.
public enum AccountDeletionBlocker: Sendable {
    /// A membership the caller's test refused to delete with.
    case membership(Membership)
    /// A provider's subscription still live and renewing.
    case subscription(provider: String, id: String)

    /// The payment provider behind it (`stripe`, `apple`), or the membership's source.
    public var provider: String {
        switch self {
        case let .membership(membership): membership.source.rawValue
        case let .subscription(provider, _): provider
        }
    }
}

/// What an access check reads of an account, cached as one fact: one cache lookup per
/// check instead of four, and the email's person key and domain worked out once, not on
/// every check. Measured (`perf`, the member scenario of Benchmarks/HTTPBenchmark): the
/// four lookups, with the person key, were 8% of a member check's CPU.
/// Trial eligibility is not in it: it is the person's (another account of the same person
/// can spend it) and is invalidated with the person (``Store/isTrialEligible(personKey:)``).
public struct AccountFacts: Sendable {
    public let account: Account
    /// Every membership, newest first, with the titles its plan grants.
    public let memberships: [Store.MembershipWithBundle]
    public let trial: Trial?
    /// ``EmailAddress/personKey`` of the account's email.
    public let personKey: String
    /// ``EmailAddress/domain`` of the account's email.
    public let emailDomain: String

    init(account: Account, memberships: [Store.MembershipWithBundle], trial: Trial?) {
        self.account = account
        self.memberships = memberships
        self.trial = trial
        let email = EmailAddress(stored: account.email)
        personKey = email.personKey
        emailDomain = email.domain
    }
}
