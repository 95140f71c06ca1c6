import Foundation
import GRDB
import PaywallCore

extension Store {
    /// Revokes the one session holding this refresh token: a reader signing out of one
    /// browser (the web pages' "Sign out"), where ``revokeSessions(accountID:actor:)`` would
    /// sign them out everywhere. Returns the session, or nil when the token opens no usable
    /// session (already signed out, expired or unknown: nothing is written then).
    @discardableResult
    public func revokeSession(refreshToken token: String, actor: AuditActor) throws(StoreError) -> RefreshSession? {
        let tokenHash = RefreshToken.hash(token)
        let now = clock.now()
        return try write { db in
            guard let session = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(RefreshSession.columns) FROM sessions WHERE token_hash = ?"), arguments: [Data(tokenHash)]
            ).map(RefreshSession.init(row:)), session.revokedAt == nil else { return nil }
            try db.cachedStatement(sql: "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .execute(arguments: [now.millis, session.id])
            try audit(db, actor: actor, action: "session.revoke", target: "account:\(session.accountID)", details: ["session": session.id])
            return session
        }
    }
}
