import Foundation
import PaywallCore

extension Store {
    /// What an admin token revocation covers.
    public enum AdminRevocation: Sendable, Equatable {
        /// One token, by its `jti` (the audit log records it when the token is minted).
        case token(id: String)
        /// Every token of one admin (`sub`) issued at or before a time (a token's `iat` is in
        /// whole seconds: one minted in the second of the revocation is revoked too).
        case subject(String, issuedUntil: Date)
    }

    /// Records a revocation of admin tokens, and audits it, in one transaction. `keepUntil`:
    /// when no token it covers can still be valid (the revocation time plus the longest
    /// admin token lifetime); ``prune(at:)`` drops the row after that.
    public func revokeAdminTokens(_ revocation: AdminRevocation, keepUntil: Date, actor: AuditActor) throws(StoreError) {
        let now = clock.now()
        try write { db in
            switch revocation {
            case let .token(id):
                try db.execute(
                    "INSERT INTO admin_token_revocations (token_id, revoked_at, revoked_by, keep_until) VALUES (?, ?, ?, ?)",
                    [id, now.millis, actor.rawValue, keepUntil.millis])
                try audit(db, actor: actor, action: "token.admin.revoke", target: "token:\(id)")
            case let .subject(name, until):
                try db.execute(
                    "INSERT INTO admin_token_revocations (subject, issued_until, revoked_at, revoked_by, keep_until) VALUES (?, ?, ?, ?, ?)",
                    [name, Int64(until.timeIntervalSince1970.rounded(.down)), now.millis, actor.rawValue, keepUntil.millis])
                try audit(db, actor: actor, action: "token.admin.revoke", target: "admin:\(name)",
                    details: ["issuedUntil": TimeText.format(until)])
            }
        }
    }

    /// The admin an admin token was minted for, and when it expires, from the audit entry
    /// that recorded its minting (`token.admin`, its details naming the `jti`); nil when no
    /// server or CLI using this store minted it.
    public func mintedAdminToken(id: String) throws(StoreError) -> (subject: String, expiresAt: String?)? {
        let needle = #""jti":"# + "\"" + id + "\""
        return try read { db in
            let contains = db.dialect == .postgres ? "strpos(details, ?) > 0" : "instr(details, ?) > 0"
            guard let row = try db.fetchOne(
                "SELECT target, details FROM audit_log WHERE action = 'token.admin' AND \(contains) ORDER BY id DESC LIMIT 1", [needle])
            else { return nil }
            let target: String = row[0] ?? ""
            let details: String = row[1] ?? "{}"
            let object = (try? JSONSerialization.jsonObject(with: Data(details.utf8))) as? [String: Any]
            return (String(target.dropFirst("admin:".count)), object?["expiresAt"] as? String)
        }
    }

    /// Whether an admin token (its `jti`, `sub` and `iat`) was revoked. Admin calls are few:
    /// asked of the store on each, never cached, so a revocation counts on every server at once.
    public func isAdminTokenRevoked(tokenID: String, subject: String, issuedAt: Date) throws(StoreError) -> Bool {
        try read { db in
            try db.fetchValue(
                Bool.self,
                "SELECT EXISTS (SELECT 1 FROM admin_token_revocations WHERE token_id = ? OR (subject = ? AND issued_until >= ?))",
                [tokenID, subject, Int64(issuedAt.timeIntervalSince1970.rounded(.down))]) ?? false
        }
    }
}
