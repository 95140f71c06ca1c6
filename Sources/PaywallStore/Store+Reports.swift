import Foundation
import PaywallCore

/// Which audit entries to list. Every field narrows; nil means any.
public struct AuditFilter: Sendable, Equatable {
    /// Exactly this actor, e.g. `admin:alice`.
    public var actor: String?
    /// Exactly this action, or, ending in `.`, every action under it (`membership.`).
    public var action: String?
    /// Exactly this target, e.g. `account:…`.
    public var target: String?
    /// At or after this instant.
    public var since: Date?
    /// Before this instant.
    public var until: Date?
    /// Only entries with a smaller id: the next page after one ending with this id.
    public var beforeID: Int64?

    public init(actor: String? = nil, action: String? = nil, target: String? = nil, since: Date? = nil, until: Date? = nil, beforeID: Int64? = nil) {
        self.actor = actor
        self.action = action
        self.target = target
        self.since = since
        self.until = until
        self.beforeID = beforeID
    }
}

/// Reads of one title over a period: what its publisher is paid on.
public struct TitleReadCounts: Sendable, Equatable {
    public var titleID: TitleID
    /// Metered reads recorded (re-reads included).
    public var reads: Int
    /// Distinct readers (accounts and devices) among them.
    public var readers: Int
    /// Distinct articles among them.
    public var articles: Int
    /// Reads through gift links.
    public var giftReads: Int
    /// Distinct articles read through gift links.
    public var giftArticles: Int

    public init(titleID: TitleID, reads: Int = 0, readers: Int = 0, articles: Int = 0, giftReads: Int = 0, giftArticles: Int = 0) {
        self.titleID = titleID
        self.reads = reads
        self.readers = readers
        self.articles = articles
        self.giftReads = giftReads
        self.giftArticles = giftArticles
    }
}

extension Store {
    /// Audit entries matching `filter`, newest first, at most `limit`. Paged by id (keyset),
    /// so a page is stable while entries are appended.
    public func auditEntries(filter: AuditFilter, limit: Int) throws(StoreError) -> [AuditEntry] {
        var conditions: [String] = []
        var arguments: SQLArguments = []
        if let actor = filter.actor {
            conditions.append("actor = ?")
            arguments.append(actor)
        }
        if let action = filter.action {
            if action.hasSuffix(".") {
                // A prefix without LIKE: no wildcard in the value can widen the match.
                conditions.append("substr(action, 1, CAST(? AS INTEGER)) = ?")
                arguments.append(action.count)
            } else {
                conditions.append("action = ?")
            }
            arguments.append(action)
        }
        if let target = filter.target {
            conditions.append("target = ?")
            arguments.append(target)
        }
        if let since = filter.since {
            conditions.append("at >= ?")
            arguments.append(since.millis)
        }
        if let until = filter.until {
            conditions.append("at < ?")
            arguments.append(until.millis)
        }
        if let before = filter.beforeID {
            conditions.append("id < ?")
            arguments.append(before)
        }
        arguments.append(max(0, limit))
        // Only fixed fragments are joined into the SQL; every value is bound.
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT id, at, actor, action, target, details FROM audit_log \(whereClause) ORDER BY id DESC LIMIT ?"
        return try read { db in
            try db.fetchAll(sql, arguments).map {
                AuditEntry(id: $0[0], at: Date(millis: $0[1]), actor: AuditActor(rawValue: $0[2]), action: $0[3], target: $0[4], details: $0[5])
            }
        }
    }

    /// Reads per title in `[from, to)`, metered and through gift links, by title id;
    /// optionally of one title (listed even without reads). Metered reads are distinct
    /// (reader, article) pairs: re-reads in the period count once.
    public func readsByTitle(from: Date, to: Date, title: TitleID?) throws(StoreError) -> [TitleReadCounts] {
        let titleClause = title == nil ? "" : " AND title_id = ?"
        var arguments: SQLArguments = [from.millis, to.millis]
        if let title { arguments.append(title.rawValue) }
        return try read { db in
            var counts: [TitleID: TitleReadCounts] = [:]
            if let title { counts[title] = TitleReadCounts(titleID: title) }
            // A reader's article counts once in a period, however often it was re-read: each
            // re-read is a row (the meter keeps the article counted from its latest read), and
            // counting rows let one account run up a title's reads with reloads.
            for row in try db.fetchAll("""
                SELECT title_id, COUNT(*), COUNT(DISTINCT subject), COUNT(DISTINCT article_id)
                FROM (SELECT DISTINCT title_id, subject, article_id FROM reads WHERE read_at >= ? AND read_at < ?\(titleClause)) AS payable
                GROUP BY title_id
                """, arguments) {
                let id = TitleID(rawValue: row[0])
                counts[id, default: TitleReadCounts(titleID: id)].reads = row[1]
                counts[id, default: TitleReadCounts(titleID: id)].readers = row[2]
                counts[id, default: TitleReadCounts(titleID: id)].articles = row[3]
            }
            for row in try db.fetchAll("""
                SELECT title_id, COUNT(*), COUNT(DISTINCT article_id) FROM gift_reads
                WHERE read_at >= ? AND read_at < ?\(titleClause) GROUP BY title_id
                """, arguments) {
                let id = TitleID(rawValue: row[0])
                counts[id, default: TitleReadCounts(titleID: id)].giftReads = row[1]
                counts[id, default: TitleReadCounts(titleID: id)].giftArticles = row[2]
            }
            return counts.values.sorted { $0.titleID < $1.titleID }
        }
    }
}
