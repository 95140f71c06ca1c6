import Foundation
import PaywallCore

extension Store {
    /// Audit entries, newest first, optionally only those about `target` (e.g. `account:…`).
    public func auditEntries(target: String? = nil, limit: Int = 100) throws(StoreError) -> [AuditEntry] {
        try read { db in
            let rows: [SQLRow]
            if let target {
                rows = try db.fetchAll("""
                    SELECT id, at, actor, action, target, details FROM audit_log WHERE target = ? ORDER BY id DESC LIMIT ?
                    """, [target, max(0, limit)])
            } else {
                rows = try db.fetchAll("""
                    SELECT id, at, actor, action, target, details FROM audit_log ORDER BY id DESC LIMIT ?
                    """, [max(0, limit)])
            }
            return rows.map {
                AuditEntry(id: $0[0], at: Date(millis: $0[1]), actor: AuditActor(rawValue: $0[2]), action: $0[3], target: $0[4], details: $0[5])
            }
        }
    }

    /// The number of audit entries.
    public func auditCount() throws(StoreError) -> Int {
        try read { db in try db.fetchValue(Int.self, "SELECT COUNT(*) FROM audit_log") ?? 0 }
    }

    /// Records an administrative action that has no row of its own (e.g. a token issued
    /// by support staff).
    public func recordAudit(actor: AuditActor, action: String, target: String, details: [String: String] = [:]) throws(StoreError) {
        try write { db in try audit(db, actor: actor, action: action, target: target, details: details) }
    }
}
