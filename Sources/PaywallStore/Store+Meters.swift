import Foundation
import PaywallCore

extension Store {
    /// Records that `read.subject` opened an article. Every read is kept (for impact
    /// analysis); meters count distinct articles, so re-reads cost nothing.
    /// Throws ``StoreError/titleNotFound(_:)`` for a title not in the catalog.
    public func recordRead(_ read: ArticleRead) throws(StoreError) {
        // Its meter lock before anything is read: on PostgreSQL a SERIALIZABLE write's
        // snapshot, fixed by the lock's own statement, could miss the deletion of the
        // account that held the lock meanwhile (the read would outlive its account).
        try writeLockingMeters([read.subject.key]) { db in try Self.insertRead(db, read) }
    }

    /// The outcome of ``recordCountedRead(_:window:limit:)``.
    public enum MeteredRead: Equatable, Sendable {
        /// Counted: the meter now stands at `used`.
        case recorded(used: Int)
        /// Already counted in the window: recorded again, free.
        case reread
        /// The meter was full (another read took the last unit): nothing recorded.
        case exhausted(used: Int)
    }

    /// A metered read's outcome, and when the oldest read its meter counts was made (nil
    /// when none is): the meter frees a unit once that read leaves the window. Both come
    /// from the read's own transaction (measured: the reset time read afterwards was one
    /// more statement per check, and on PostgreSQL one more round trip).
    public struct CountedRead: Equatable, Sendable {
        public var outcome: MeteredRead
        public var oldestCounted: Date?
        /// The meter's count as the transaction left it (this read included when counted or
        /// re-read).
        public var used: Int
    }

    /// Records a read against a meter of `limit` articles per `window`, atomically: the
    /// check and the insert run in one write transaction, so concurrent readers cannot
    /// overspend a meter. Concurrent calls share transactions (``GroupCommit``); each
    /// returns once the transaction holding its read has committed, with the meter as that
    /// transaction left it.
    public func recordCountedRead(_ read: ArticleRead, window: TimeInterval, limit: Int) throws(StoreError) -> CountedRead {
        if readOnly { throw StoreError.readOnly(path: location) }
        return try groupCommit.submit(read: read, window: window, limit: limit, commit: { [self] in commitMetered($0) }, closedError: closedError).get()
    }

    /// ``recordCountedRead(_:window:limit:)`` for async callers: suspends (holding no
    /// thread) until the transaction holding the read has committed.
    public func recordCountedRead(_ read: ArticleRead, window: TimeInterval, limit: Int) async throws(StoreError) -> CountedRead {
        if readOnly { throw StoreError.readOnly(path: location) }
        // Unchecked: the group commit resumes each read exactly once (an outcome per read of
        // every batch, or the closed store's error), and the checked kind cost an allocation
        // and an atomic per metered check.
        let outcome = await withUnsafeContinuation { (continuation: UnsafeContinuation<GroupCommit.Outcome, Never>) in
            groupCommit.enqueue(
                GroupCommit.Pending(read: read, window: window, limit: limit, deliver: { continuation.resume(returning: $0) }),
                commit: { [self] in commitMetered($0) }, closedError: closedError)
        }
        return try outcome.get()
    }

    /// Metered reads waiting for their transaction.
    public var meteredReadsWaiting: Int { groupCommit.waiting }

    private var closedError: StoreError { .cannotOpen(path: location, detail: "the store is closed") }

    /// One transaction for a batch of metered reads, each in a savepoint of its own; an
    /// outcome per read.
    private func commitMetered(_ batch: [GroupCommit.Pending]) -> [Result<CountedRead, StoreError>] {
        commitMetered(batch.map { ($0.read, $0.window, $0.limit) })
    }

    /// How long each read of a batch that timed out waiting for a lock waits for its own
    /// when tried again alone (milliseconds).
    static let lockRetryMillis = 100

    /// How long a batch of several reads waits for its readers' locks before it is tried
    /// read by read (milliseconds; the busy timeout if shorter). A reader's meter lock is
    /// held for milliseconds by any one check; one held longer is another server's
    /// transaction frozen (until PostgreSQL's 15 s idle limit ends it), and every other
    /// reader of the batch waited the whole 5 s busy timeout behind it before (a
    /// fifteenth-session note; now about 1.1 s).
    static let batchLockWaitMillis = 1_000

    /// ``commitMetered(_:)`` for the batch's reads.
    func commitMetered(_ batch: [(read: ArticleRead, window: TimeInterval, limit: Int)], lockWaitMillis: Int? = nil) -> [Result<CountedRead, StoreError>] {
        do {
            if readOnly { throw StoreError.readOnly(path: location) }
            if let postgres = backend as? PostgresBackend {
                do {
                    let wait = lockWaitMillis ?? (batch.count > 1 ? min(Self.batchLockWaitMillis, postgres.lockTimeoutMillis) : nil)
                    if let outcomes = try postgres.pipelinedMeteredReads(batch, lockWaitMillis: wait) { return outcomes }
                } catch where batch.count > 1 && PostgresBackend.isLockTimeout(error) {
                    // One reader's lock held elsewhere (another server's transaction, frozen
                    // until PostgreSQL ends it) timed the whole batch out. Each read again
                    // alone, waiting briefly: the others are answered, and only a read whose
                    // lock is still held fails (found in review: unrelated readers got 503).
                    return batch.map { commitMetered([$0], lockWaitMillis: Self.lockRetryMillis)[0] }
                }
            }
            return try backend.meteredReadBatch(subjects: batch.map(\.read.subject.key)) { db, meterState in
                // A read that fails must leave the others. On PostgreSQL a failed statement
                // aborts the transaction, so each read runs in a savepoint. SQLite undoes a
                // failed statement alone and keeps the transaction, and a read fails only at
                // its one insert (an unknown title, a deleted account; any other error fails
                // the batch): no savepoint, two statements a read fewer.
                let isolate = db.dialect == .postgres
                return try batch.map { pending -> Result<CountedRead, StoreError> in
                    do {
                        let read = { try Self.meteredRead(db, pending.read, window: pending.window, limit: pending.limit, state: meterState) }
                        return .success(isolate ? try db.inSavepoint(read) : try read())
                    } catch let error as StoreError {
                        return .failure(error)
                    } catch where SQLConstraint.violated(by: error) != nil {
                        // A constraint concerns this read alone, not the transaction.
                        return .failure(backend.storeError(error))
                    }
                }
            }
        } catch {
            // The transaction itself failed (locked, disk full…): nothing of it is stored.
            return batch.map { _ in .failure(backend.storeError(error)) }
        }
    }

    /// A re-read this soon after its article's latest read writes nothing (both backends).
    static let quietRereadMillis: Int64 = 60_000

    /// `state`: the SQLite writer's counted articles (``SQLiteMeterState``), which answer
    /// what the two queries would.
    static func meteredRead(_ db: any SQLConnection, _ read: ArticleRead, window: TimeInterval, limit: Int, state: SQLiteMeterState? = nil) throws -> CountedRead {
        let subject = read.subject.key
        let start = read.at.addingTimeInterval(-window).millis
        // No upper bound: concurrent checks are stamped when they start but committed in
        // the order they reach the writer, so a read stamped a millisecond *later* may
        // already hold the last unit. Counting it is what keeps the meter exact.
        let end = Int64.max
        let latest: Int64?, used: Int, oldest: Int64?
        if let state {
            let facts = try state.facts(subject: subject, after: start, title: read.titleID.rawValue, article: read.articleID) {
                try db.fetchAll(MeterSQL.latestByArticle, [subject, start]).map { row in
                    (SQLiteMeterState.ArticleKey(title: row[0], article: row[1]), row[2])
                }
            }
            (latest, used, oldest) = (facts.latestOfArticle, facts.used, facts.oldest)
        } else {
            latest = try db.fetchValue(Int64.self, MeterSQL.latestReadOfArticle, [subject, start, end, read.titleID.rawValue, read.articleID])
            let counted = try db.fetchOne(MeterSQL.countAllAndOldest, [subject, start, end])
            used = counted?[0] ?? 0
            oldest = counted?[1]
        }
        if let latest {  // counted already: the count includes it
            // A reload, or an app asking twice: nothing is written (each re-read was a
            // durable row, and one account could add rows as fast as it could ask). The
            // article then stays counted from its latest read at most this much less long.
            if read.at.millis - latest < Self.quietRereadMillis {
                return CountedRead(outcome: .reread, oldestCounted: oldest.map(Date.init(millis:)) ?? read.at, used: used)
            }
            try insertRead(db, read)
            state?.recorded(subject: subject, title: read.titleID.rawValue, article: read.articleID, at: read.at.millis)
            // The article now stays counted until this read leaves: if its earlier read was
            // the one to leave first, another is now. Asked again (re-reads only).
            let after = try state?.oldest(subject: subject, after: start)
                ?? db.fetchValue(Int64.self, MeterSQL.oldestCounted, [subject, start, end])
            return CountedRead(outcome: .reread, oldestCounted: after.map(Date.init(millis:)) ?? read.at, used: used)
        }
        guard used < limit else {
            return CountedRead(outcome: .exhausted(used: used), oldestCounted: oldest.map(Date.init(millis:)), used: used)
        }
        try insertRead(db, read)
        state?.recorded(subject: subject, title: read.titleID.rawValue, article: read.articleID, at: read.at.millis)
        // A new article's read is its latest (stamped `read.at`, in the window).
        let withThis = Date(millis: min(oldest ?? read.at.millis, read.at.millis))
        return CountedRead(outcome: .recorded(used: used + 1), oldestCounted: withThis, used: used + 1)
    }

    /// When the counted read in `subject`'s window ending at `at` that leaves the window
    /// first was made (each article's latest read; nil when none is): the meter frees a
    /// unit once it leaves.
    public func oldestCountedRead(subject: MeterSubject, window: TimeInterval, at instant: Date) throws(StoreError) -> Date? {
        try readHotSQL { db in
            try db.fetchValue(Int64.self, MeterSQL.oldestCounted, [subject.key, instant.addingTimeInterval(-window).millis, instant.millis]
            ).map(Date.init(millis:))
        }
    }

    /// Records several reads in one transaction (all or none).
    ///
    /// `actor`: reads an operator brings (`paywall meter record|import`) are audited as
    /// `meter.import` in the same transaction, how many, of how many readers and titles,
    /// and their span: they count in the reads report publishers are paid on.
    public func recordReads(_ reads: [ArticleRead], actor: AuditActor? = nil) throws(StoreError) {
        // Every subject's meter lock first, in one order (as ``recordRead(_:)`` says why).
        try writeLockingMeters(Array(Set(reads.map(\.subject.key)))) { db in
            for read in reads { try Self.insertRead(db, read) }
            if let actor, let first = reads.map(\.at).min(), let last = reads.map(\.at).max() {
                try audit(db, actor: actor, action: "meter.import", target: "reads", details: [
                    "reads": String(reads.count), "readers": String(Set(reads.map(\.subject.key)).count),
                    "titles": Set(reads.map(\.titleID.rawValue)).sorted().prefix(20).joined(separator: ","),
                    "from": TimeText.format(first), "to": TimeText.format(last),
                ])
            }
        }
    }

    static func insertRead(_ db: any SQLConnection, _ read: ArticleRead) throws {
        do {
            try db.lockMeters([read.subject.key])
            switch read.subject {
            case .device:
                try db.execute("INSERT INTO reads (subject, title_id, article_id, read_at) VALUES (?, ?, ?, ?)", [read.subject.key, read.titleID.rawValue, read.articleID, read.at.millis])
            case let .account(id):
                // Not for an account deleted since its check read its facts: the read would
                // outlive the deletion (`reads.subject` is no foreign key: devices have no
                // row). Exact: the deletion takes this subject's meter lock.
                let inserted = try db.execute("""
                    INSERT INTO reads (subject, title_id, article_id, read_at)
                    SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)
                    """, [read.subject.key, read.titleID.rawValue, read.articleID, read.at.millis, id.rawValue])
                if inserted == 0 { throw StoreError.accountNotFound(id.rawValue) }
            }
        } catch where SQLConstraint.violated(by: error) == .foreignKey {
            throw StoreError.titleNotFound(read.titleID.rawValue)
        }
    }

    /// The meter facts of a decision: distinct articles `subject` read in the window
    /// ending at `instant`, and whether this article is one of them. One statement on
    /// PostgreSQL (a round trip each costs more than the query), the two hot reads on SQLite.
    public func meterFacts(subject: MeterSubject, window: TimeInterval, title: TitleID, article: String, at instant: Date) throws(StoreError) -> (used: Int, alreadyRead: Bool) {
        let start = instant.addingTimeInterval(-window).millis
        let end = instant.millis
        return try readHot { hot in
            if hot.connection.dialect == .postgres {
                guard let row = try hot.connection.fetchOne(
                    MeterSQL.meterFactsPostgres,
                    [subject.key, start, end, subject.key, start, end, title.rawValue, article]) else { return (0, false) }
                let used: Int = row[0]
                let already: Bool = row[1]
                return (used, already)
            }
            return (try hot.meterCount(subject: subject.key, start: start, end: end, title: nil),
                    try hot.hasRead(subject: subject.key, title: title.rawValue, article: article, start: start, end: end))
        }
    }

    /// Distinct articles `subject` read in the rolling window `(now - window, now]`,
    /// optionally only of one title.
    public func meterUsage(subject: MeterSubject, window: TimeInterval, title: TitleID? = nil, at instant: Date? = nil) throws(StoreError) -> MeterUsage {
        let end = instant ?? clock.now()
        let start = end.addingTimeInterval(-window)
        let used = try readHot { hot in
            try hot.meterCount(subject: subject.key, start: start.millis, end: end.millis, title: title?.rawValue)
        }
        return MeterUsage(used: used, windowStart: start, windowEnd: end)
    }

    /// Whether `subject` already read this article within the window (a re-read is free).
    public func hasRead(subject: MeterSubject, title: TitleID, article: String, window: TimeInterval, at instant: Date? = nil) throws(StoreError) -> Bool {
        let end = instant ?? clock.now()
        let start = end.addingTimeInterval(-window)
        return try readHot { hot in
            try hot.hasRead(subject: subject.key, title: title.rawValue, article: article, start: start.millis, end: end.millis)
        }
    }

    /// Recorded reads from `since` on, oldest first, at most `limit`.
    public func reads(since: Date, limit: Int) throws(StoreError) -> [ArticleRead] {
        try read { db in
            try db.fetchAll("SELECT subject, title_id, article_id, read_at FROM reads WHERE read_at >= ? ORDER BY read_at, id LIMIT ?", [since.millis, max(0, limit)]
            ).compactMap { row -> ArticleRead? in
                let key: String = row[0]
                let subject: MeterSubject
                if key.hasPrefix("account:") {
                    subject = .account(AccountID(rawValue: String(key.dropFirst("account:".count))))
                } else if key.hasPrefix("device:") {
                    subject = .device(String(key.dropFirst("device:".count)))
                } else {
                    return nil
                }
                return ArticleRead(subject: subject, titleID: TitleID(rawValue: row[1]), articleID: row[2], at: Date(millis: row[3]))
            }
        }
    }

    /// One reader's recorded reads, newest first, at most `limit` (a reader's own data).
    public func reads(subject: MeterSubject, limit: Int) throws(StoreError) -> [ArticleRead] {
        try read { db in
            try db.fetchAll("SELECT title_id, article_id, read_at FROM reads WHERE subject = ? ORDER BY read_at DESC, id DESC LIMIT ?", [subject.key, max(0, limit)]
            ).map { row in ArticleRead(subject: subject, titleID: TitleID(rawValue: row[0]), articleID: row[1], at: Date(millis: row[2])) }
        }
    }

    /// The number of stored reads (every read, re-reads included).
    public func readCount() throws(StoreError) -> Int {
        try read { db in try db.fetchValue(Int.self, "SELECT COUNT(*) FROM reads") ?? 0 }
    }
}
