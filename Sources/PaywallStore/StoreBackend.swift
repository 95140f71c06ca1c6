import Foundation
import PaywallCore

/// Where a ``Store`` keeps its data: one SQLite file (``SQLiteBackend``, the embedded
/// default) or one PostgreSQL database shared by several servers (``PostgresBackend``).
/// The store's operations are written once against this; each backend says how its
/// transactions are made exact.
protocol StoreBackend: Sendable {
    /// The file path, or the database URL without its password: for messages.
    var location: String { get }

    /// Runs `body` in a read transaction (one consistent snapshot).
    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T

    /// Runs `body` in a write transaction that behaves as if it ran alone: nothing is
    /// written when it throws. On PostgreSQL `body` may run more than once (a serialization
    /// failure is retried), so it must only touch the database.
    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T

    /// Runs `body`, a write of metered reads by `subjects`, so that each subject's count
    /// and insert are exact against every other writer, on any server.
    func meteredWrite<T>(subjects: [String], _ body: (any SQLConnection) throws -> T) throws -> T

    /// Runs `body`, one transaction of a batch of metered reads by `subjects`, exact as
    /// ``meteredWrite(subjects:_:)``; with the SQLite writer's counted articles when the
    /// backend keeps them (``SQLiteMeterState``: nil on PostgreSQL, where other servers
    /// write), which the backend checks before `body` and forgets if the batch fails.
    func meteredReadBatch<T>(subjects: [String], _ body: (any SQLConnection, SQLiteMeterState?) throws -> T) throws -> T

    /// Runs one hot-path query (atomic on its own), or inside ``snapshot(_:)`` on this
    /// thread, in the snapshot's transaction.
    func readHot<T>(_ body: (any HotQueries) throws -> T) throws -> T

    /// Runs `body` with every hot read it makes on this thread in one read transaction,
    /// begun at the first read.
    func snapshot<T>(_ body: () throws -> T) throws -> T

    /// Whether this thread is inside ``snapshot(_:)`` of this backend.
    var inSnapshot: Bool { get }

    /// The facts this server caches (``FactsCache``).
    var facts: FactsCache { get }

    /// Reads what changed since the last time, when that is due (SQLite's change log;
    /// PostgreSQL is told). False when the cache must not be used now (the log could not
    /// be read).
    func catchUpOnFactChanges() -> Bool

    /// ``ThreadSpecificSnapshot/factsGeneration(of:)`` of this backend's snapshot.
    func snapshotFactsGeneration() -> UInt64?

    /// The store's error for an error of this backend (a store error passes through).
    func storeError(_ error: any Error) -> StoreError

    /// Schema and consistency checks.
    func health() throws -> StoreHealth

    /// Closes every connection; further calls fail.
    func close() throws
}

/// The queries an entitlement check runs on every request, each one statement.
protocol HotQueries {
    /// The connection, for the hot path's other reads.
    var connection: any SQLConnection { get }
    func account(emailKey: String) throws -> Account?
    func account(id: String) throws -> Account?
    func title(id: String) throws -> Title?
    func membershipsWithBundles(accountID: String) throws -> [(Membership, TitleBundle)]
    /// Distinct articles read by `subject` in `(start, end]`, optionally of one title.
    func meterCount(subject: String, start: Int64, end: Int64, title: String?) throws -> Int
    /// Whether `subject` read this article in `(start, end]`.
    func hasRead(subject: String, title: String, article: String, start: Int64, end: Int64) throws -> Bool
    /// An account's facts: the account, its memberships with their plans' titles (newest
    /// first) and its trial; nil when there is no such account.
    func facts(accountID: String) throws -> (Account, [(Membership, TitleBundle)], Trial?)?
}

extension HotQueries {
    /// Three reads (SQLite's are its hot reader's prepared statements, in one process).
    func facts(accountID: String) throws -> (Account, [(Membership, TitleBundle)], Trial?)? {
        guard let account = try account(id: accountID) else { return nil }
        return (account, try membershipsWithBundles(accountID: accountID), try Store.trial(connection, accountID: AccountID(rawValue: accountID)))
    }
}

/// The hot queries as ordinary statements on any connection (PostgreSQL's; SQLite keeps
/// its own prepared ones, ``HotReader``).
struct PlainHotQueries: HotQueries {
    let connection: any SQLConnection

    static let accountByEmailSQL = "SELECT \(Account.columns) FROM accounts WHERE email_key = ?"
    static let accountByIDSQL = "SELECT \(Account.columns) FROM accounts WHERE id = ?"

    func account(emailKey: String) throws -> Account? {
        try connection.fetchOne(Self.accountByEmailSQL, [emailKey]).map(Account.init(row:))
    }

    func account(id: String) throws -> Account? {
        try connection.fetchOne(Self.accountByIDSQL, [id]).map(Account.init(row:))
    }

    func title(id: String) throws -> Title? {
        try Store.title(connection, TitleID(rawValue: id))
    }

    func membershipsWithBundles(accountID: String) throws -> [(Membership, TitleBundle)] {
        try connection.fetchAll(HotReader.membershipsSQL(connection.dialect), [accountID]).map(Self.membershipWithBundle(row:))
    }

    /// A row of ``HotReader/membershipsSQL(_:)``: the membership's columns, then its plan's
    /// `all_titles` and listed titles.
    static func membershipWithBundle(row: SQLRow) -> (Membership, TitleBundle) {
        let membership = Membership(row: row)
        let allTitles: Int64? = row[10]
        let listed: String? = row[11]
        let bundle: TitleBundle = allTitles.map { $0 != 0 } == true
            ? .all : .titles(Set(HotReader.list(listed).map(TitleID.init(rawValue:))))
        return (membership, bundle)
    }

    /// A reader's facts in one statement (PostgreSQL: one round trip instead of three for a
    /// reader new to the server): the account's columns, its trial's (NULL when none), then
    /// one row per membership as ``HotReader/membershipsSQL(_:)`` gives it (NULL when
    /// none), newest first. Argument: the account id.
    static let accountFactsPostgresSQL = """
        SELECT \(qualified(Account.columns, "a")), \(qualified(Trial.columns, "t")), \(HotReader.membershipColumns(.postgres))
        FROM accounts a
        LEFT JOIN LATERAL (SELECT \(Trial.columns) FROM trials WHERE account_id = a.id LIMIT 1) t ON true
        LEFT JOIN memberships m ON m.account_id = a.id
        LEFT JOIN plans p ON p.id = m.plan_id
        WHERE a.id = ? ORDER BY m.id DESC
        """

    /// PostgreSQL: one statement, one round trip (three before; measured in BENCHMARKS.md,
    /// "A reader new to the server"). The columns of each part are counted from its list.
    func facts(accountID: String) throws -> (Account, [(Membership, TitleBundle)], Trial?)? {
        let rows = try connection.fetchAll(Self.accountFactsPostgresSQL, [accountID])
        guard let first = rows.first else { return nil }
        let accountEnd = columnCount(Account.columns), trialEnd = accountEnd + columnCount(Trial.columns)
        let trialRow = first.slice(accountEnd..<trialEnd)
        // A LEFT JOIN's missing side is NULL in every column, its id first.
        let trial = trialRow.values.first == .null ? nil : Trial(row: trialRow)
        let memberships = rows.compactMap { row -> (Membership, TitleBundle)? in
            let part = row.slice(trialEnd..<row.values.count)
            return part.values.first == .null ? nil : Self.membershipWithBundle(row: part)
        }
        return (Account(row: first.slice(0..<accountEnd)), memberships, trial)
    }

    func meterCount(subject: String, start: Int64, end: Int64, title: String?) throws -> Int {
        if let title {
            return try connection.fetchValue(Int.self, MeterSQL.countTitle, [subject, start, end, title]) ?? 0
        }
        return try connection.fetchValue(Int.self, MeterSQL.countAll, [subject, start, end]) ?? 0
    }

    func hasRead(subject: String, title: String, article: String, start: Int64, end: Int64) throws -> Bool {
        try connection.fetchValue(Bool.self, MeterSQL.readInWindow, [subject, start, end, title, article]) ?? false
    }
}

/// A snapshot's read transaction, which begins at its first query: a check whose facts all
/// come from the cache (``FactsCache``) takes no connection and runs no statement.
protocol SnapshotTransaction: AnyObject {
    /// The ``FactsCache`` generation read just before the transaction began (nil until it
    /// begins): a fact read in it may predate any invalidation after that.
    var factsGenerationAtBegin: UInt64? { get }
}

/// A per-thread slot (pthread-specific data) holding the snapshot the thread is in: a
/// snapshot is entered and left on one thread, synchronously, so the nested reads find it
/// without any locking. One slot per backend kind for the whole process (pthread keys are
/// few); each value is tagged with the backend that owns it.
final class ThreadSpecificSnapshot: @unchecked Sendable {
    /// A snapshot in progress: its owner, its hot queries and when its transaction began.
    final class Context {
        unowned let owner: AnyObject
        let hot: any HotQueries
        let transaction: any SnapshotTransaction
        init(owner: AnyObject, hot: any HotQueries, transaction: any SnapshotTransaction) {
            self.owner = owner
            self.hot = hot
            self.transaction = transaction
        }
    }

    private var key = pthread_key_t()

    init() {
        pthread_key_create(&key, nil)
    }

    var value: Context? {
        get { pthread_getspecific(key).map { Unmanaged<Context>.fromOpaque($0).takeUnretainedValue() } }
        set {
            if let old = pthread_getspecific(key) { Unmanaged<Context>.fromOpaque(old).release() }
            pthread_setspecific(key, newValue.map { Unmanaged.passRetained($0).toOpaque() })
        }
    }

    /// The snapshot `owner` has open on this thread, if any.
    func current(of owner: AnyObject) -> (any HotQueries)? {
        guard let context = value, context.owner === owner else { return nil }
        return context.hot
    }

    /// `owner`'s snapshot transaction on this thread, if any.
    func transaction(of owner: AnyObject) -> (any SnapshotTransaction)? {
        guard let context = value, context.owner === owner else { return nil }
        return context.transaction
    }

    /// The ``FactsCache`` generation when `owner`'s snapshot on this thread began its
    /// transaction; nil when there is none or it has not begun.
    func factsGeneration(of owner: AnyObject) -> UInt64? {
        guard let context = value, context.owner === owner else { return nil }
        return context.transaction.factsGenerationAtBegin
    }

    /// Runs `body` with `hot` as `owner`'s snapshot on this thread (another owner's
    /// snapshot is put back after).
    func with<T>(owner: AnyObject, hot: any HotQueries, transaction: any SnapshotTransaction, _ body: () throws -> T) rethrows -> T {
        let outer = value
        value = Context(owner: owner, hot: hot, transaction: transaction)
        defer { value = outer }
        return try body()
    }
}
