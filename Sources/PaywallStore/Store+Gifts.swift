import Foundation
import PaywallCore

extension Gift {
    static let columns = "id, account_id, title_id, article_id, created_at, expires_at"

    init(row: SQLRow) {
        self.init(
            id: row[0], accountID: AccountID(rawValue: row[1]), titleID: TitleID(rawValue: row[2]), articleID: row[3],
            createdAt: Date(millis: row[4]), expiresAt: Date(millis: row[5]))
    }
}

extension Store {
    /// The outcome of ``createGift(_:limit:)``.
    public enum GiftCreation: Equatable, Sendable {
        /// Stored; the member has now made `used` gifts this month.
        case created(used: Int)
        /// The member already made `used` (at least the limit) this month: nothing stored.
        case limitReached(used: Int)
    }

    /// Stores a gift unless its member already made `limit` this calendar month. The count
    /// and the insert run in one write transaction, so concurrent requests cannot overshoot
    /// the limit: SQLite has one writer; on PostgreSQL the transaction is SERIALIZABLE and
    /// two that counted the same gifts cannot both commit (the loser is retried and counts
    /// again). Audited with the member as the actor.
    public func createGift(_ gift: Gift, limit: Int) throws(StoreError) -> GiftCreation {
        let month = Gift.month(of: gift.createdAt)
        return try write { db in
            _ = try Self.requireAccount(db, gift.accountID)
            guard let title = try Self.title(db, gift.titleID, lock: .share) else { throw StoreError.titleNotFound(gift.titleID.rawValue) }
            if title.isRetired { throw StoreError.titleRetired(gift.titleID.rawValue) }
            let used = try Self.giftCount(db, gift.accountID, from: month.start, to: month.end)
            guard used < limit else { return .limitReached(used: used) }
            try db.execute("""
                INSERT INTO gifts (id, account_id, title_id, article_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
                """, [gift.id, gift.accountID.rawValue, gift.titleID.rawValue, gift.articleID, gift.createdAt.millis, gift.expiresAt.millis])
            try audit(db, actor: .account(gift.accountID), action: "gift.create", target: "title:\(gift.titleID)", details: [
                "gift": gift.id, "article": gift.articleID, "expiresAt": TimeText.format(gift.expiresAt),
            ])
            return .created(used: used + 1)
        }
    }

    static func giftCount(_ db: any SQLConnection, _ accountID: AccountID, from: Date, to: Date) throws -> Int {
        try db.fetchValue(Int.self, "SELECT COUNT(*) FROM gifts WHERE account_id = ? AND created_at >= ? AND created_at < ?", [accountID.rawValue, from.millis, to.millis]) ?? 0
    }

    /// Gifts the member made in `[from, to)`.
    public func giftCount(accountID: AccountID, from: Date, to: Date) throws(StoreError) -> Int {
        try read { db in try Self.giftCount(db, accountID, from: from, to: to) }
    }

    /// The gifts a member made, newest first, at most `limit`.
    public func gifts(accountID: AccountID, limit: Int) throws(StoreError) -> [Gift] {
        try read { db in
            try db.fetchAll("SELECT \(Gift.columns) FROM gifts WHERE account_id = ? ORDER BY created_at DESC, id LIMIT ?", [accountID.rawValue, max(0, limit)])
                .map(Gift.init(row:))
        }
    }

    /// An article read through someone's gift link.
    public struct GiftRead: Sendable, Equatable {
        public var giftID: String
        public var titleID: TitleID
        public var articleID: String
        public var at: Date
    }

    /// The articles `subject` read through gift links, newest first (a reader's export).
    public func giftReads(subject: MeterSubject, limit: Int) throws(StoreError) -> [GiftRead] {
        try read { db in
            try db.fetchAll(
                "SELECT gift_id, title_id, article_id, read_at FROM gift_reads WHERE subject = ? ORDER BY read_at DESC, id DESC LIMIT ?",
                [subject.key, max(0, limit)]
            ).map { row in GiftRead(giftID: row[0], titleID: TitleID(rawValue: row[1]), articleID: row[2], at: Date(millis: row[3])) }
        }
    }

    /// The gift with this id, or nil (never made, or its member's account was deleted).
    public func gift(id: String) throws(StoreError) -> Gift? {
        try read { db in
            try db.fetchOne("SELECT \(Gift.columns) FROM gifts WHERE id = ?", [id]).map(Gift.init(row:))
        }
    }

    /// Records that `subject` (nil: an anonymous reader without a device) read a gift's
    /// article. Kept apart from metered reads: it consumes no meter.
    ///
    /// Once per gift and reader (one row for all anonymous readers of a gift): publishers
    /// are paid on these, and a loop over one link must not count again and again (nor
    /// cost a durable insert each time). Returns whether a read was recorded.
    @discardableResult
    public func recordGiftRead(_ gift: Gift, subject: MeterSubject?, at instant: Date) throws(StoreError) -> Bool {
        let record = { (db: any SQLConnection) throws -> Bool in
            let seen = try db.fetchValue(Bool.self, "SELECT EXISTS (SELECT 1 FROM gift_reads WHERE gift_id = ? AND subject IS NOT DISTINCT FROM ?)", [gift.id, subject?.key]) ?? false
            if seen { return false }
            do {
                try db.execute("INSERT INTO gift_reads (gift_id, subject, title_id, article_id, read_at) VALUES (?, ?, ?, ?, ?)", [gift.id, subject?.key, gift.titleID.rawValue, gift.articleID, instant.millis])
            } catch where SQLConstraint.violated(by: error) == .foreignKey {
                throw StoreError.titleNotFound(gift.titleID.rawValue)
            }
            return true
        }
        guard let subject else { return try write(record) }
        // Under the reader's meter lock, which an account's deletion takes too: a read racing
        // the deletion is either unlinked by it or refused here, never left naming the
        // account after it is gone.
        return try writeLockingMeters([subject.key]) { db in
            if case let .account(id) = subject,
               try db.fetchValue(Bool.self, "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?)", [id.rawValue]) != true {
                throw StoreError.accountNotFound(id.rawValue)
            }
            return try record(db)
        }
    }
}
