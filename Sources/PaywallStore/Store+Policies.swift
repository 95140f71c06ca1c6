import Foundation
import PaywallCore

/// A policy published to the store: the files of a policy folder, as checked when they
/// were published.
public struct PublishedPolicy: Sendable, Equatable {
    /// The publication's number: later publications have larger numbers.
    public var number: Int64
    /// The policy's revision (a hash of its files' names and texts).
    public var revision: String
    /// File name to text, in name order when compiled.
    public var files: [String: String]
    public var author: String
    /// Why (a rollback names the revision it went back to).
    public var note: String?
    public var publishedAt: Date
}

extension Store {
    /// The PostgreSQL notification channel a publication is announced on.
    public static let policyChannel = "paywall_policy"

    /// Publishes `files` (already checked by the caller) as the policy every server runs,
    /// audited as `policy.publish` with its author. On PostgreSQL the commit notifies
    /// ``policyChannel`` so servers switch at once; each server also polls.
    public func publishPolicy(revision: String, files: [String: String], author: String, note: String?, actor: AuditActor? = nil) throws(StoreError) -> PublishedPolicy {
        let now = clock.now()
        let text = Self.json(files)
        return try write { db in
            if db.dialect == .postgres {
                // Publications one at a time: an identity value is handed out at insert, not
                // at commit, and servers only ever move to a higher number. Two at once could
                // commit out of order (11 before 10), and 10 (an incident's rollback, say)
                // would never be taken. Under this lock the numbers follow the commits.
                _ = try db.fetchValue(Int64.self, "SELECT count(pg_advisory_xact_lock(hashtextextended('paywall:policy_revisions', 0)))")
            }
            let number = try db.insertedID(
                "INSERT INTO policy_revisions (revision, files, author, note, published_at) VALUES (?, ?, ?, ?, ?)",
                [revision, text, author, note, now.millis])
            try audit(db, actor: actor ?? .admin(author), action: "policy.publish", target: "policy", details: [
                "revision": revision, "number": String(number), "note": note ?? "", "author": author,
            ])
            if db.dialect == .postgres {
                // Delivered when (and only if) this transaction commits.
                try db.execute("SELECT pg_notify(?, ?)", [Self.policyChannel, String(number)])
            }
            return PublishedPolicy(number: number, revision: revision, files: files, author: author, note: note, publishedAt: now)
        }
    }

    /// The newest publication, or nil when none was made (servers then use their folder).
    public func latestPublishedPolicy() throws(StoreError) -> PublishedPolicy? {
        try read { db in
            try db.fetchOne("SELECT \(Self.policyColumns) FROM policy_revisions ORDER BY id DESC LIMIT 1").map(Self.publishedPolicy(row:))
        }
    }

    /// The newest publication's number: the cheap question a server polls.
    public func latestPolicyNumber() throws(StoreError) -> Int64? {
        try readHotSQL { db in try db.fetchValue(Int64.self, "SELECT MAX(id) FROM policy_revisions") }
    }

    /// The newest publication of `revision` (a revision id, or a unique prefix of one).
    public func publishedPolicy(revision: String) throws(StoreError) -> PublishedPolicy? {
        try read { db in
            let rows = try db.fetchAll(
                "SELECT \(Self.policyColumns) FROM policy_revisions WHERE substr(revision, 1, CAST(? AS INTEGER)) = ? ORDER BY id DESC",
                [revision.count, revision]).map(Self.publishedPolicy(row:))
            guard Set(rows.map(\.revision)).count <= 1 else { throw StoreError.ambiguousRevision(revision) }
            return rows.first
        }
    }

    /// Publications, newest first (files included).
    public func policyHistory(limit: Int = 50) throws(StoreError) -> [PublishedPolicy] {
        try read { db in
            try db.fetchAll("SELECT \(Self.policyColumns) FROM policy_revisions ORDER BY id DESC LIMIT ?", [max(0, limit)])
                .map(Self.publishedPolicy(row:))
        }
    }

    /// Notifications of publications as they are made, from any server: PostgreSQL's
    /// `LISTEN` (an empty value after each reconnection: look again). Nil on SQLite, whose
    /// servers poll.
    public func policyNotifications() -> AsyncStream<String>? {
        (backend as? PostgresBackend)?.notifications(channel: Self.policyChannel)
    }

    static let policyColumns = "id, revision, files, author, note, published_at"

    static func publishedPolicy(row: SQLRow) -> PublishedPolicy {
        let text: String = row[2]
        let files = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String] ?? [:]
        return PublishedPolicy(number: row[0], revision: row[1], files: files, author: row[3], note: row[4], publishedAt: Date(millis: row[5]))
    }
}
