import Foundation
import PaywallCore
import PaywallCrypto

extension RefreshSession {
    static let columns = "id, account_id, family_id, created_at, expires_at, revoked_at, family_started_at"

    init(row: SQLRow) {
        self.init(
            id: row[0], accountID: AccountID(rawValue: row[1]), familyID: row[2],
            createdAt: Date(millis: row[3]), expiresAt: Date(millis: row[4]),
            revokedAt: (row[5] as Int64?).map(Date.init(millis:)),
            familyStartedAt: Date(millis: row[6]))
    }
}

/// The outcome of presenting a refresh token by its hash (``Store/rotateSession(tokenHash:newTokenHash:lifetime:)``).
enum SessionRotation: Equatable, Sendable {
    /// The old token was valid; it is now revoked and `session` replaces it.
    case rotated(RefreshSession)
    /// The token had already been used: the whole family is revoked (likely theft).
    case reuseDetected(familyID: String)
    /// The token expired or was revoked, its family outlived its lifetime, or it is unknown.
    case rejected
}

/// The outcome of presenting a refresh token (``Store/refreshSession(token:lifetime:)``).
public enum SessionRefresh: Equatable, Sendable {
    /// The token was valid: it is now spent, and `token` (shown once) opens `session`.
    case rotated(token: String, session: RefreshSession)
    /// The token had been rotated moments ago (within the grace window) and its successor
    /// is still current: the same successor again, for a client that refreshed twice at
    /// once. Nothing was revoked.
    case alreadyRotated(token: String, session: RefreshSession)
    /// The token had already been used: the whole family is revoked (likely theft), and a
    /// `session.reuse` audit entry names it.
    case reuseDetected(familyID: String)
    /// The token expired or was revoked, its family outlived its lifetime, or it is unknown.
    case rejected
}

/// Refresh tokens: 32 random bytes in base64url without padding (43 characters), stored as
/// the SHA-256 of that text. A rotated token keeps its successor sealed under itself, so
/// that only someone presenting the old token can recover the successor.
enum RefreshToken {
    static let byteCount = 32

    /// A new token's bytes and text.
    static func generate() throws(StoreError) -> (bytes: [UInt8], text: String) {
        let bytes: [UInt8]
        do {
            bytes = try SecureRandom.bytes(byteCount)
        } catch {
            throw .randomUnavailable(detail: error.description)
        }
        return (bytes, text(bytes))
    }

    static func text(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// What the store keeps of a token.
    static func hash(_ text: String) -> [UInt8] { SHA256.hash(text) }

    /// The one-time pad that seals a successor under `oldToken`:
    /// SHA-256("paywall refresh successor" || old token).
    static func pad(oldToken: String) -> [UInt8] {
        SHA256.hash(Array("paywall refresh successor".utf8) + Array(oldToken.utf8))
    }

    /// `a` XOR `b` (both `byteCount` long, or nil).
    static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8]? {
        guard a.count == byteCount, b.count == byteCount else { return nil }
        return zip(a, b).map { $0 ^ $1 }
    }
}

extension Store {
    // MARK: - Starting a session

    /// Starts a session (a new family) for an account and returns its refresh token, to
    /// hand to the reader once; the store keeps only the token's SHA-256.
    /// `passwordHash`: as for ``startSession(accountID:lifetime:deviceName:maximum:passwordHash:)``.
    public func createSession(accountID: AccountID, lifetime: TimeInterval, passwordHash: String? = nil) throws(StoreError) -> (token: String, session: RefreshSession) {
        let token = try RefreshToken.generate()
        let session = try createSession(accountID: accountID, tokenHash: RefreshToken.hash(token.text), lifetime: lifetime, passwordHash: passwordHash)
        return (token.text, session)
    }

    /// Refuses (``StoreError/passwordChanged``) unless `hash` is the account's password
    /// hash, inside the caller's write transaction.
    static func requirePasswordHash(_ db: any SQLConnection, _ accountID: AccountID, _ hash: String) throws {
        let stored = try db.fetchValue(String.self, "SELECT password_hash FROM credentials WHERE account_id = ?", [accountID.rawValue])
        guard stored == hash else { throw StoreError.passwordChanged }
    }

    /// Stores a new session (a new family) for an account. `tokenHash` is the SHA-256 of
    /// the refresh token; the token itself is never stored. Prefer
    /// ``createSession(accountID:lifetime:)``, which makes the token.
    func createSession(accountID: AccountID, tokenHash: [UInt8], lifetime: TimeInterval, passwordHash: String? = nil) throws(StoreError) -> RefreshSession {
        let now = storedNow()
        let session = RefreshSession(
            id: UUID().uuidString.lowercased(), accountID: accountID, familyID: UUID().uuidString.lowercased(),
            createdAt: now, expiresAt: Self.stored(now.addingTimeInterval(min(lifetime, sessionFamilyLifetime))), revokedAt: nil,
            familyStartedAt: now)
        try write { db in
            try Self.requireAccount(db, accountID)
            if let passwordHash { try Self.requirePasswordHash(db, accountID, passwordHash) }
            try Self.insertSession(db, session, tokenHash: tokenHash)
        }
        return session
    }

    // MARK: - Refreshing

    /// Exchanges a refresh token for a new one in the same family, in one transaction:
    ///
    /// - a usable token is spent and a new one returned (`.rotated`); the new session ends
    ///   `lifetime` from now, but never after its family's lifetime
    ///   (``StoreConfiguration/sessionFamilyLifetime``);
    /// - a token already rotated within ``StoreConfiguration/refreshGraceWindow``, whose
    ///   successor is still current (neither rotated nor revoked), gets that same successor
    ///   (`.alreadyRotated`): a client's concurrent refreshes do not sign it out;
    /// - any other use of a rotated token revokes the whole family and records a
    ///   `session.reuse` audit entry (`.reuseDetected`);
    /// - an unknown, expired or revoked token, or one of a family past its lifetime, is
    ///   `.rejected`.
    ///
    /// Exact across servers: the lookup and the rotation are one write transaction (one
    /// writer on SQLite; SERIALIZABLE with retry on PostgreSQL), so two concurrent uses of a
    /// token see each other: one rotates, the other finds it rotated.
    public func refreshSession(token: String, lifetime: TimeInterval) throws(StoreError) -> SessionRefresh {
        let now = storedNow()
        let next = try RefreshToken.generate()
        let pad = RefreshToken.pad(oldToken: token)
        let successor = Successor(tokenHash: RefreshToken.hash(next.text), sealed: RefreshToken.xor(next.bytes, pad))
        return try write { db in
            switch try rotate(db, tokenHash: RefreshToken.hash(token), successor: successor, pad: pad, lifetime: lifetime, now: now) {
            case let .rotated(session): .rotated(token: next.text, session: session)
            case let .alreadyRotated(token, session): .alreadyRotated(token: token, session: session)
            case let .reuseDetected(familyID): .reuseDetected(familyID: familyID)
            case .rejected: .rejected
            }
        }
    }

    /// Exchanges a refresh token, by hash, for the new token hash `newTokenHash` in the
    /// same family. Like ``refreshSession(token:lifetime:)`` (family lifetime, reuse
    /// detection and its audit entry) but without the grace window, which needs the token
    /// itself: any second use of a token revokes its family.
    func rotateSession(tokenHash: [UInt8], newTokenHash: [UInt8], lifetime: TimeInterval) throws(StoreError) -> SessionRotation {
        let now = storedNow()
        return try write { db in
            switch try rotate(db, tokenHash: tokenHash, successor: Successor(tokenHash: newTokenHash, sealed: nil), pad: nil, lifetime: lifetime, now: now) {
            case let .rotated(session): .rotated(session)
            case let .reuseDetected(familyID): .reuseDetected(familyID: familyID)
            case .alreadyRotated, .rejected: .rejected  // no grace without a pad
            }
        }
    }

    /// The token that replaces a rotated one: its hash, and its bytes sealed under the
    /// old token (nil when the old token is not known, only its hash).
    struct Successor {
        var tokenHash: [UInt8]
        var sealed: [UInt8]?
    }

    enum Rotation {
        case rotated(RefreshSession)
        case alreadyRotated(token: String, session: RefreshSession)
        case reuseDetected(familyID: String)
        case rejected
    }

    /// One refresh, inside the caller's write transaction. `pad` unseals the successor of
    /// an already rotated token (nil: no grace).
    func rotate(_ db: any SQLConnection, tokenHash: [UInt8], successor: Successor, pad: [UInt8]?, lifetime: TimeInterval, now: Date) throws -> Rotation {
        guard let row = try db.fetchOne("SELECT \(RefreshSession.columns), replaced_by, successor_sealed FROM sessions WHERE token_hash = ?", [Data(tokenHash)])
        else { return .rejected }
        let old = RefreshSession(row: row)
        let familyEnd = old.familyStartedAt.addingTimeInterval(sessionFamilyLifetime)

        if let replacedBy = row[7] as String? {
            if let pad, let sealed = row[8] as Data?,
               let found = try currentSuccessor(db, of: old, id: replacedBy, sealed: Array(sealed), pad: pad, familyEnd: familyEnd, now: now) {
                return .alreadyRotated(token: found.token, session: found.session)
            }
            try revokeReusedFamily(db, old, now: now)
            return .reuseDetected(familyID: old.familyID)
        }

        guard old.isUsable(at: now), now < familyEnd else { return .rejected }
        let next = RefreshSession(
            id: UUID().uuidString.lowercased(), accountID: old.accountID, familyID: old.familyID,
            createdAt: now, expiresAt: Self.stored(min(now.addingTimeInterval(lifetime), familyEnd)), revokedAt: nil,
            familyStartedAt: old.familyStartedAt)
        try Self.insertSession(db, next, tokenHash: successor.tokenHash)
        // A rotated session's revoked_at is the moment of its rotation (later revocations
        // never overwrite it): the grace window counts from it.
        try db.execute("UPDATE sessions SET revoked_at = ?, replaced_by = ?, successor_sealed = ? WHERE id = ?", [now.millis, next.id, successor.sealed.map { Data($0) }, old.id])
        // Seals past their grace window open nothing any more: drop them.
        try db.execute("UPDATE sessions SET successor_sealed = NULL WHERE family_id = ? AND successor_sealed IS NOT NULL AND revoked_at < ?", [old.familyID, now.addingTimeInterval(-refreshGraceWindow).millis])
        return .rotated(next)
    }

    /// The successor of `old`, unsealed, when `old` was rotated within the grace window
    /// and the successor is still current; nil otherwise (including when the unsealed
    /// token does not match the successor's stored hash).
    private func currentSuccessor(
        _ db: any SQLConnection, of old: RefreshSession, id: String, sealed: [UInt8], pad: [UInt8], familyEnd: Date, now: Date
    ) throws -> (token: String, session: RefreshSession)? {
        guard let rotatedAt = old.revokedAt, now < rotatedAt.addingTimeInterval(refreshGraceWindow), now < familyEnd,
              let row = try db.fetchOne("SELECT \(RefreshSession.columns), replaced_by, token_hash FROM sessions WHERE id = ?", [id])
        else { return nil }
        let session = RefreshSession(row: row)
        guard session.familyID == old.familyID, (row[7] as String?) == nil, session.isUsable(at: now),
              let storedHash = row[8] as Data?,
              let bytes = RefreshToken.xor(sealed, pad)
        else { return nil }
        let token = RefreshToken.text(bytes)
        guard ConstantTime.equal(RefreshToken.hash(token), Array(storedHash)) else { return nil }
        return (token, session)
    }

    // MARK: - Reading and revoking

    /// The usable session holding this refresh token, or nil.
    public func session(token: String) throws(StoreError) -> RefreshSession? {
        try session(tokenHash: RefreshToken.hash(token))
    }

    /// A token already rotated, shown again: theft (the holder and the thief each have a
    /// copy, and whichever came second is one of them). The whole family is revoked.
    private func revokeReusedFamily(_ db: any SQLConnection, _ old: RefreshSession, now: Date) throws {
        let revoked = try db.execute("UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?), successor_sealed = NULL WHERE family_id = ? AND (revoked_at IS NULL OR successor_sealed IS NOT NULL)", [now.millis, old.familyID])
        // Audited once, when it revokes something: replaying a token of a family already
        // revoked must not let anyone flood the audit log. The family and the reused
        // session are named, never the token or its hash.
        if revoked > 0 {
            try audit(db, actor: .system, action: "session.reuse", target: "account:\(old.accountID)",
                      details: ["family": old.familyID, "session": old.id])
            // Theft is known here: the access tokens the family's holders were given end
            // too. The count is the account's, so every device's current token goes; the
            // other devices' sessions stay, and their next refresh gives them new ones.
            try Self.endAccessTokens(db, accountID: old.accountID)
        }
    }

    /// A web session's cookie whose token opens no session: when the token was rotated (by
    /// `POST /v1/sessions/refresh`: the pages never rotate theirs), someone else holds its
    /// successor, a copy of the cookie taken and used as an app's refresh token. As the API
    /// does with a rotated token shown twice, the family is revoked, the thief's successor
    /// with it; the reader signs in again (found in review: the pages only cleared their
    /// cookie, and the copy lived on for the session's lifetime). Returns whether it was so.
    /// A read first: a cookie merely expired or signed out writes nothing.
    @discardableResult
    public func revokeIfRotated(webToken token: String) throws(StoreError) -> Bool {
        let hash = Data(RefreshToken.hash(token))
        let sql = "SELECT \(RefreshSession.columns) FROM sessions WHERE token_hash = ? AND replaced_by IS NOT NULL"
        guard try read({ db in try db.fetchOne(sql, [hash]) }) != nil else { return false }
        let now = storedNow()
        return try write { db in
            guard let row = try db.fetchOne(sql, [hash]) else { return false }
            try revokeReusedFamily(db, RefreshSession(row: row), now: now)
            return true
        }
    }

    /// The usable session whose refresh token has this SHA-256, or nil.
    func session(tokenHash: [UInt8]) throws(StoreError) -> RefreshSession? {
        let now = clock.now()
        return try read { db in
            try db.fetchOne("SELECT \(RefreshSession.columns) FROM sessions WHERE token_hash = ?", [Data(tokenHash)])
                .map(RefreshSession.init(row:))
        }.flatMap { isLive($0, at: now) ? $0 : nil }
    }

    /// Revokes every usable session of an account (sign out everywhere). Returns how many.
    @discardableResult
    public func revokeSessions(accountID: AccountID, actor: AuditActor) throws(StoreError) -> Int {
        let now = clock.now()
        return try write { db in
            try Self.requireAccount(db, accountID)
            return try revokeSessions(db, accountID: accountID, actor: actor, now: now)
        }
    }

    /// Revokes an account's usable sessions inside the caller's write transaction, with
    /// its `session.revoke-all` audit entry, and ends the access tokens issued so far: the
    /// account's ``Account/signOutsEverywhere`` goes up by one (its row's change drops the
    /// account from every server's cached facts). Returns how many sessions ended.
    func revokeSessions(_ db: any SQLConnection, accountID: AccountID, actor: AuditActor, now: Date) throws -> Int {
        try Self.endAccessTokens(db, accountID: accountID)
        let count = try db.execute("UPDATE sessions SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL AND expires_at > ?", [now.millis, accountID.rawValue, now.millis])
        // And the rotated tokens' sealed successors, as for one session: an old refresh
        // token replayed later is then refused quietly, not taken for theft (which would end
        // the access tokens issued since, the new sign-in's too, and audit a false reuse).
        try db.execute("UPDATE sessions SET successor_sealed = NULL WHERE account_id = ? AND successor_sealed IS NOT NULL", [accountID.rawValue])
        try audit(db, actor: actor, action: "session.revoke-all", target: "account:\(accountID)", details: ["count": String(count)])
        return count
    }

    /// Ends every access token issued to the account so far, inside the caller's write
    /// transaction: its ``Account/signOutsEverywhere`` goes up by one, above the count each
    /// carries (the row's change drops the account from every server's cached facts).
    static func endAccessTokens(_ db: any SQLConnection, accountID: AccountID) throws {
        try db.execute("UPDATE accounts SET sign_outs_everywhere = sign_outs_everywhere + 1 WHERE id = ?", [accountID.rawValue])
    }

    /// The account's ``Account/signOutsEverywhere`` as committed now, never from a server's
    /// cached facts (which may lag another server's change by a notification): what a new
    /// access token carries. Nil when there is no such account.
    public func signOutsEverywhere(accountID: AccountID) throws(StoreError) -> Int? {
        try read { db in try db.fetchValue(Int.self, "SELECT sign_outs_everywhere FROM accounts WHERE id = ?", [accountID.rawValue]) }
    }

    /// An account's sessions that can still be used.
    public func activeSessions(accountID: AccountID) throws(StoreError) -> [RefreshSession] {
        let now = clock.now()
        return try read { db in
            try db.fetchAll("""
                    SELECT \(RefreshSession.columns) FROM sessions
                    WHERE account_id = ? AND revoked_at IS NULL AND expires_at > ? AND family_started_at > ?
                    ORDER BY created_at
                    """, [accountID.rawValue, now.millis, now.addingTimeInterval(-sessionFamilyLifetime).millis]
            ).map(RefreshSession.init(row:))
        }
    }

    /// Now, to the millisecond, as stored: a returned session equals the one read back.
    func storedNow() -> Date { Self.stored(clock.now()) }

    /// An instant to the millisecond, as stored.
    static func stored(_ date: Date) -> Date { Date(millis: date.millis) }

    /// Whether a session can be used at `now`: not revoked, not expired, and its family
    /// within its lifetime (which may have been shortened since the session was made).
    func isLive(_ session: RefreshSession, at now: Date) -> Bool {
        session.isUsable(at: now) && now < session.familyStartedAt.addingTimeInterval(sessionFamilyLifetime)
    }

    static func insertSession(_ db: any SQLConnection, _ session: RefreshSession, tokenHash: [UInt8]) throws {
        try db.execute("""
            INSERT INTO sessions (id, account_id, family_id, token_hash, created_at, expires_at, family_started_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [session.id, session.accountID.rawValue, session.familyID, Data(tokenHash),
                                     session.createdAt.millis, session.expiresAt.millis, session.familyStartedAt.millis])
    }
}
