import Foundation
import GRDB
import PaywallCore

extension Store {
    /// Records that `read.subject` opened an article. Every read is kept (for impact
    /// analysis); meters count distinct articles, so re-reads cost nothing.
    /// Throws ``StoreError/titleNotFound(_:)`` for a title not in the catalog.
    public func recordRead(_ read: ArticleRead) throws(StoreError) {
        try write { db in try Self.insertRead(db, read) }
    }

    /// Records several reads in one transaction (all or none).
    public func recordReads(_ reads: [ArticleRead]) throws(StoreError) {
        try write { db in
            for read in reads { try Self.insertRead(db, read) }
        }
    }

    static func insertRead(_ db: Database, _ read: ArticleRead) throws {
        do {
            try db.cachedStatement(sql: "INSERT INTO reads (subject, title_id, article_id, read_at) VALUES (?, ?, ?, ?)")
                .execute(arguments: [read.subject.key, read.titleID.rawValue, read.articleID, read.at.millis])
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_FOREIGNKEY {
            throw StoreError.titleNotFound(read.titleID.rawValue)
        }
    }

    /// Distinct articles `subject` read in the rolling window `(now - window, now]`,
    /// optionally only of one title.
    public func meterUsage(subject: MeterSubject, window: TimeInterval, title: TitleID? = nil) throws(StoreError) -> MeterUsage {
        let end = clock.now()
        let start = end.addingTimeInterval(-window)
        let used = try read { db in
            if let title {
                return try Int.fetchOne(db.cachedStatement(sql: """
                    SELECT COUNT(*) FROM (SELECT DISTINCT article_id FROM reads
                    WHERE subject = ? AND read_at > ? AND read_at <= ? AND title_id = ?)
                    """), arguments: [subject.key, start.millis, end.millis, title.rawValue]) ?? 0
            }
            return try Int.fetchOne(db.cachedStatement(sql: """
                SELECT COUNT(*) FROM (SELECT DISTINCT title_id, article_id FROM reads
                WHERE subject = ? AND read_at > ? AND read_at <= ?)
                """), arguments: [subject.key, start.millis, end.millis]) ?? 0
        }
        return MeterUsage(used: used, windowStart: start, windowEnd: end)
    }

    /// Whether `subject` already read this article within the window (a re-read is free).
    public func hasRead(subject: MeterSubject, title: TitleID, article: String, window: TimeInterval) throws(StoreError) -> Bool {
        let end = clock.now()
        let start = end.addingTimeInterval(-window)
        return try read { db in
            try Bool.fetchOne(db.cachedStatement(sql: """
                SELECT EXISTS (SELECT 1 FROM reads WHERE subject = ? AND read_at > ? AND read_at <= ? AND title_id = ? AND article_id = ?)
                """), arguments: [subject.key, start.millis, end.millis, title.rawValue, article]) ?? false
        }
    }

    /// The number of stored reads (every read, re-reads included).
    public func readCount() throws(StoreError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reads") ?? 0 }
    }
}
