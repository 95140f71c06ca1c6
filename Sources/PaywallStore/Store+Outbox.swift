import Foundation
import PaywallCore

/// A message for the outbox.
public struct OutgoingMail: Sendable {
    public var recipient: String
    public var subject: String
    public var body: String
    public init(recipient: String, subject: String, body: String) {
        self.recipient = recipient
        self.subject = subject
        self.body = body
    }
}

extension OutboxMessage {
    static let columns = "id, recipient, subject, body, created_at, expires_at, sent_at, attempts, last_error"

    init(row: SQLRow) {
        self.init(
            id: row[0], recipient: row[1], subject: row[2], body: row[3], createdAt: Date(millis: row[4]), expiresAt: Date(millis: row[5]),
            sentAt: (row[6] as Int64?).map(Date.init(millis:)), attempts: row[7], lastError: row[8])
    }
}

extension Store {
    // MARK: - Single-use links

    /// Makes a single-use link token for an account and queues the mail carrying it, in one
    /// transaction: the link is never valid without its mail queued, nor the mail queued
    /// with a link that was not stored. Earlier unused links of the same purpose are
    /// deleted (a newer link invalidates older ones). Only the token's SHA-256 is stored;
    /// `compose` gets the token to put in the message. Audited as `email-link.issue`.
    /// Returns the outbox id of the queued message.
    public func issueEmailLink(
        accountID: AccountID, purpose: EmailLinkPurpose, lifetime: TimeInterval, actor: AuditActor,
        compose: (Account, String) -> OutgoingMail
    ) throws(StoreError) -> Int64 {
        let token = try RefreshToken.generate()
        let now = storedNow()
        let expires = now.addingTimeInterval(lifetime)
        return try write { db in
            guard let account = try Self.account(db, id: accountID) else { throw StoreError.accountNotFound(accountID.rawValue) }
            try db.execute("DELETE FROM email_links WHERE account_id = ? AND purpose = ?", [accountID.rawValue, purpose.rawValue])
            try db.execute("DELETE FROM email_links WHERE expires_at <= ?", [now.millis])
            try db.execute("INSERT INTO email_links (token_hash, account_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)", [Data(RefreshToken.hash(token.text)), accountID.rawValue, purpose.rawValue, now.millis, expires.millis])
            let mail = compose(account, token.text)
            // A queued message past its link's life opens nothing: erase its body now
            // rather than keep a dead link's token in the file.
            try db.execute("UPDATE outbox SET body = '' WHERE sent_at IS NULL AND expires_at <= ? AND body != ''", [now.millis])
            let id = try Self.queueMail(db, mail, for: accountID, at: now, expires: expires)
            try audit(db, actor: actor, action: "email-link.issue", target: "account:\(accountID)", details: [
                "purpose": purpose.rawValue, "outbox": String(id), "expiresAt": TimeText.format(expires),
            ])
            return id
        }
    }

    /// Queues a message about `account` inside the caller's write transaction, due now;
    /// past `expires` its body is erased (a link's message then opens nothing). Returns its
    /// outbox id. The account is recorded (schema v23) so that its data export lists its
    /// mail, and only its: an address can pass from one account to another.
    @discardableResult
    static func queueMail(_ db: any SQLConnection, _ mail: OutgoingMail, for account: AccountID, at now: Date, expires: Date) throws -> Int64 {
        try db.insertedID("""
            INSERT INTO outbox (recipient, subject, body, created_at, expires_at, next_attempt_at, account_id) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [mail.recipient, mail.subject, mail.body, now.millis, expires.millis, now.millis, account.rawValue])
    }

    /// Queues a notice about `account` (a change the owner of an address should hear of)
    /// inside the caller's write transaction, kept a week.
    static func queueNotice(_ db: any SQLConnection, _ mail: OutgoingMail, for account: AccountID, at now: Date) throws {
        try queueMail(db, mail, for: account, at: now, expires: now.addingTimeInterval(7 * 86_400))
    }

    /// The account a live link of `purpose` belongs to, without using it (nil: unknown,
    /// used, superseded or expired).
    public func emailLinkAccount(token: String, purpose: EmailLinkPurpose) throws(StoreError) -> AccountID? {
        let now = clock.now()
        return try read { db in try Self.liveLink(db, token: token, purpose: purpose, now: now) }
    }

    static func liveLink(_ db: any SQLConnection, token: String, purpose: EmailLinkPurpose, now: Date) throws -> AccountID? {
        // Looked up by the token's hash (an index lookup on a value the attacker cannot
        // steer toward a stored one), never compared byte by byte against stored tokens.
        try db.fetchValue(String.self, "SELECT account_id FROM email_links WHERE token_hash = ? AND purpose = ? AND expires_at > ?", [Data(RefreshToken.hash(token)), purpose.rawValue, now.millis]
        ).map(AccountID.init(rawValue:))
    }

    /// Uses a verification link: marks the account's email verified and deletes the link,
    /// in one transaction. Nil when the link is not live (nothing written).
    public func verifyEmail(token: String, actor: AuditActor? = nil) throws(StoreError) -> Account? {
        let now = storedNow()
        return try write { db -> Account? in
            guard let accountID = try Self.liveLink(db, token: token, purpose: .verifyEmail, now: now) else { return nil }
            try db.execute("DELETE FROM email_links WHERE token_hash = ?", [Data(RefreshToken.hash(token))])
            let email = try Self.requireAccount(db, accountID)
            try db.execute("UPDATE accounts SET email_verified_at = COALESCE(email_verified_at, ?), updated_at = ? WHERE id = ?", [now.millis, now.millis, accountID.rawValue])
            try audit(db, actor: actor ?? .account(accountID), action: "account.verify-email", target: "account:\(accountID)",
                      details: ["email": email, "method": "link"])
            return try Self.account(db, id: accountID)
        }
    }

    /// Uses a password-reset link: sets the new hash, signs the account out everywhere
    /// and deletes the link, in one transaction. Nil when the link is not live (nothing
    /// written); otherwise the account and how many sessions ended.
    public func resetPassword(token: String, hash: String) throws(StoreError) -> (AccountID, Int)? {
        let now = storedNow()
        return try write { db -> (AccountID, Int)? in
            guard let accountID = try Self.liveLink(db, token: token, purpose: .resetPassword, now: now) else { return nil }
            // Every reset link of the account goes: one reset spends them all.
            try db.execute("DELETE FROM email_links WHERE account_id = ? AND purpose = ?", [accountID.rawValue, EmailLinkPurpose.resetPassword.rawValue])
            try db.execute("UPDATE credentials SET password_hash = ?, updated_at = ? WHERE account_id = ?", [hash, now.millis, accountID.rawValue])
            try db.execute("UPDATE accounts SET updated_at = ? WHERE id = ?", [now.millis, accountID.rawValue])
            let actor = AuditActor.account(accountID)
            try audit(db, actor: actor, action: "account.reset-password", target: "account:\(accountID)", details: ["method": "link"])
            return (accountID, try revokeSessions(db, accountID: accountID, actor: actor, now: now))
        }
    }

    // MARK: - The outbox

    /// Messages queued for `recipient` since `since` (to bound how much mail one address gets).
    public func mailCount(recipient: String, since: Date) throws(StoreError) -> Int {
        try read { db in
            try db.fetchValue(Int.self, "SELECT COUNT(*) FROM outbox WHERE recipient = ? AND created_at >= ?", [recipient, since.millis]) ?? 0
        }
    }

    /// Takes up to `limit` messages due for delivery and leases them for `lease` seconds
    /// (one write): a concurrent delivery does not take them too. A message not marked
    /// sent or failed within its lease is due again.
    public func claimMail(limit: Int, lease: TimeInterval) throws(StoreError) -> [OutboxMessage] {
        let now = storedNow()
        return try write { db in
            let messages = try db.fetchAll("""
                    SELECT \(OutboxMessage.columns) FROM outbox
                    WHERE sent_at IS NULL AND next_attempt_at <= ? AND expires_at > ? ORDER BY id LIMIT ?
                    """, [now.millis, now.millis, max(0, limit)]
            ).map(OutboxMessage.init(row:))
            for message in messages {
                try db.execute("UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1 WHERE id = ?", [now.addingTimeInterval(lease).millis, message.id])
            }
            return messages
        }
    }

    /// Records a delivery: the body is erased (it may hold a single-use link, and the
    /// mail system has it now).
    public func markMailSent(id: Int64) throws(StoreError) {
        let now = storedNow()
        try write { db in
            try db.execute("UPDATE outbox SET sent_at = ?, body = '', last_error = NULL WHERE id = ?", [now.millis, id])
        }
    }

    /// Records a failed delivery; the message is due again after `retryAfter`.
    public func markMailFailed(id: Int64, error: String, retryAfter: TimeInterval) throws(StoreError) {
        let now = storedNow()
        try write { db in
            try db.execute("UPDATE outbox SET last_error = ?, next_attempt_at = ? WHERE id = ?", [String(error.prefix(500)), now.addingTimeInterval(retryAfter).millis, id])
        }
    }

    /// Mail queued about an account (to whichever address it had then), newest first, at
    /// most `limit`, WITHOUT bodies (a waiting message holds its live link): what a reader's
    /// data export lists. Mail queued before schema v23 names no account and is not listed.
    public func mail(accountID: AccountID, limit: Int) throws(StoreError) -> [OutboxMessage] {
        try read { db in
            try db.fetchAll(
                "SELECT \(OutboxMessage.columns) FROM outbox WHERE account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                [accountID.rawValue, max(0, limit)]
            ).map { row in
                var message = OutboxMessage(row: row)
                message.body = ""
                return message
            }
        }
    }

    /// A link mailed to an account and not used yet, as its reader may know of it: what it
    /// does, the address an undo link would put back, and when it expires. Never its token.
    public struct PendingLink: Sendable, Equatable {
        /// `verify-email`, `reset-password` or `undo-email-change`.
        public var purpose: String
        /// An undo link's address.
        public var restores: String?
        public var expiresAt: Date
    }

    /// The account's live links, soonest to expire first.
    public func pendingLinks(accountID: AccountID) throws(StoreError) -> [PendingLink] {
        let now = clock.now()
        return try read { db in
            let links = try db.fetchAll(
                "SELECT purpose, expires_at FROM email_links WHERE account_id = ? AND expires_at > ?", [accountID.rawValue, now.millis]
            ).map { PendingLink(purpose: $0[0], restores: nil, expiresAt: Date(millis: $0[1])) }
            let undos = try db.fetchAll(
                "SELECT restores_email, expires_at FROM email_reverts WHERE account_id = ? AND expires_at > ?", [accountID.rawValue, now.millis]
            ).map { PendingLink(purpose: "undo-email-change", restores: $0[0], expiresAt: Date(millis: $0[1])) }
            return (links + undos).sorted { ($0.expiresAt, $0.purpose) < ($1.expiresAt, $1.purpose) }
        }
    }

    /// The outbox, newest first.
    public func outbox(limit: Int) throws(StoreError) -> [OutboxMessage] {
        try read { db in
            try db.fetchAll("SELECT \(OutboxMessage.columns) FROM outbox ORDER BY id DESC LIMIT ?", [max(0, limit)])
                .map(OutboxMessage.init(row:))
        }
    }
}
