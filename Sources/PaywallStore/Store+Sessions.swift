import Foundation
import GRDB
import PaywallCore

extension RefreshSession {
    static let columns = "id, account_id, family_id, created_at, expires_at, revoked_at"

    init(row: Row) {
        self.init(
            id: row[0], accountID: AccountID(rawValue: row[1]), familyID: row[2],
            createdAt: Date(millis: row[3]), expiresAt: Date(millis: row[4]),
            revokedAt: (row[5] as Int64?).map(Date.init(millis:)))
    }
}

/// The outcome of presenting a refresh token.
public enum SessionRotation: Equatable, Sendable {
    /// The old token was valid; it is now revoked and `session` replaces it.
    case rotated(RefreshSession)
    /// The token had already been used: the whole family is revoked (likely theft).
    case reuseDetected(familyID: String)
    /// The token expired or was revoked.
    case rejected
}

extension Store {
    /// Stores a new session (a new family) for an account. `tokenHash` is the SHA-256 of
    /// the refresh token; the token itself is never stored.
    public func createSession(accountID: AccountID, tokenHash: [UInt8], lifetime: TimeInterval) throws(StoreError) -> RefreshSession {
        let now = clock.now()
        let session = RefreshSession(
            id: UUID().uuidString.lowercased(), accountID: accountID, familyID: UUID().uuidString.lowercased(),
            createdAt: now, expiresAt: now.addingTimeInterval(lifetime), revokedAt: nil)
        try write { db in
            try Self.requireAccount(db, accountID)
            try Self.insertSession(db, session, tokenHash: tokenHash)
        }
        return session
    }

    /// Exchanges a refresh token (by hash) for a new one in the same family.
    public func rotateSession(tokenHash: [UInt8], newTokenHash: [UInt8], lifetime: TimeInterval) throws(StoreError) -> SessionRotation {
        let now = clock.now()
        return try write { db in
            guard let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(RefreshSession.columns), replaced_by FROM sessions WHERE token_hash = ?"),
                arguments: [Data(tokenHash)])
            else { return .rejected }
            let old = RefreshSession(row: row)
            let replacedBy: String? = row[6]
            if replacedBy != nil {
                try db.cachedStatement(sql: "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE family_id = ?")
                    .execute(arguments: [now.millis, old.familyID])
                return .reuseDetected(familyID: old.familyID)
            }
            guard old.isUsable(at: now) else { return .rejected }
            let next = RefreshSession(
                id: UUID().uuidString.lowercased(), accountID: old.accountID, familyID: old.familyID,
                createdAt: now, expiresAt: now.addingTimeInterval(lifetime), revokedAt: nil)
            try Self.insertSession(db, next, tokenHash: newTokenHash)
            try db.cachedStatement(sql: "UPDATE sessions SET revoked_at = ?, replaced_by = ? WHERE id = ?")
                .execute(arguments: [now.millis, next.id, old.id])
            return .rotated(next)
        }
    }

    /// The usable session holding this refresh token, or nil.
    public func session(tokenHash: [UInt8]) throws(StoreError) -> RefreshSession? {
        let now = clock.now()
        return try read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(RefreshSession.columns) FROM sessions WHERE token_hash = ?"), arguments: [Data(tokenHash)])
                .map(RefreshSession.init(row:))
        }.flatMap { $0.isUsable(at: now) ? $0 : nil }
    }

    /// Revokes every usable session of an account (sign out everywhere). Returns how many.
    @discardableResult
    public func revokeSessions(accountID: AccountID, actor: AuditActor) throws(StoreError) -> Int {
        let now = clock.now()
        return try write { db in
            try Self.requireAccount(db, accountID)
            try db.cachedStatement(sql: "UPDATE sessions SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL AND expires_at > ?")
                .execute(arguments: [now.millis, accountID.rawValue, now.millis])
            let count = db.changesCount
            try audit(db, actor: actor, action: "session.revoke-all", target: "account:\(accountID)", details: ["count": String(count)])
            return count
        }
    }

    /// An account's sessions that can still be used.
    public func activeSessions(accountID: AccountID) throws(StoreError) -> [RefreshSession] {
        let now = clock.now().millis
        return try read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(RefreshSession.columns) FROM sessions WHERE account_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at"),
                arguments: [accountID.rawValue, now]
            ).map(RefreshSession.init(row:))
        }
    }

    static func insertSession(_ db: Database, _ session: RefreshSession, tokenHash: [UInt8]) throws {
        try db.cachedStatement(sql: """
            INSERT INTO sessions (id, account_id, family_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
            """).execute(arguments: [session.id, session.accountID.rawValue, session.familyID, Data(tokenHash),
                                     session.createdAt.millis, session.expiresAt.millis])
    }
}
