import Foundation
import GRDB
import GRDBSQLite
import PaywallCore
import Synchronization

/// Read-only connections for the queries an entitlement check runs on every request
/// (account by email or id, meter count, "already read?"), each one SQL statement.
///
/// Measured (BENCHMARKS.md): `DatabasePool.read` costs about 25 µs per call (it wraps each
/// read in `BEGIN … COMMIT`, checks the schema version and walks its readers), and GRDB's
/// `fetchOne` about 2 µs more than the query itself. These connections are still GRDB
/// connections (opening, configuration, busy handling, errors), but keep their hot
/// statements prepared once and step them directly; a single SELECT is atomic without an
/// explicit transaction. Everything else goes through GRDB's ordinary API.
final class HotReaders: Sendable {
    private let readers: [HotReader]
    private let available: Mutex<[Int]>
    private let slots: DispatchSemaphore
    /// The snapshot the calling thread is in, if any (see ``snapshot(_:)``).
    private static let current = ThreadSpecificSnapshot()

    /// The server's cached facts (whose generation a snapshot notes as it begins).
    let facts: FactsCache

    init(path: String, count: Int, busyTimeout: Double, facts: FactsCache) throws {
        self.facts = facts
        var config = Configuration()
        config.readonly = true
        // A snapshot's transaction spans several `inDatabase` calls on its leased reader
        // (``LazyHotSnapshot``): begun at its first query, ended when the check is done.
        config.allowsUnsafeTransactions = true
        config.busyMode = .timeout(busyTimeout)
        config.label = "paywall.hot-reader"
        readers = try (0..<max(1, count)).map { _ in try HotReader(DatabaseQueue(path: path, configuration: config)) }
        available = Mutex(Array(readers.indices))
        slots = DispatchSemaphore(value: readers.count)
    }

    /// Runs `body` on a free reader, on that reader's connection; inside a ``snapshot(_:)``
    /// on this thread, on the snapshot's connection and transaction.
    func read<T>(_ body: (any HotQueries) throws -> T) throws -> T {
        if let snapshot = Self.current.current(of: self) { return try body(snapshot) }
        return try withFreeReader { reader in try reader.queue.inDatabase { db in
            try Self.endLeftTransaction(db)
            return try body(SQLiteHotQueries(reader: reader, db: db))
        } }
    }

    /// Rolls back a transaction a snapshot could not end (its COMMIT and ROLLBACK both
    /// failed): a reader left inside one would answer from a frozen snapshot (and GRDB's
    /// own check is off for these connections, ``LazyHotSnapshot``). Checked on every
    /// use: SQLite's autocommit flag, no statement.
    static func endLeftTransaction(_ db: Database) throws {
        if db.isInsideTransaction { try db.execute(sql: "ROLLBACK") }
    }

    /// Takes a free reader for the time of `body`.
    private func withFreeReader<T>(_ body: (HotReader) throws -> T) rethrows -> T {
        let index = take()
        defer { giveBack(index) }
        return try body(readers[index])
    }

    /// Takes a free reader (waits for one); give its index back.
    fileprivate func take() -> Int {
        slots.wait()
        return available.withLock { $0.removeLast() }
    }

    fileprivate func giveBack(_ index: Int) {
        available.withLock { $0.append(index) }
        slots.signal()
    }

    fileprivate func reader(_ index: Int) -> HotReader { readers[index] }

    /// Runs `body` with every hot read it makes on this thread in one read transaction of
    /// one reader: one consistent snapshot (a meter's count and "already read?" cannot
    /// straddle a concurrent commit), and one WAL read lock instead of one per statement.
    /// The transaction begins at the first read (``LazyHotSnapshot``): a check whose facts
    /// are all cached takes no reader.
    /// Whether this thread is inside ``snapshot(_:)``.
    var inSnapshot: Bool { Self.current.current(of: self) != nil }

    func snapshot<T>(_ body: () throws -> T) throws -> T {
        if Self.current.current(of: self) != nil { return try body() }
        let lazy = LazyHotSnapshot(readers: self)
        defer { lazy.end() }
        return try Self.current.with(owner: self, hot: lazy, transaction: lazy, body)
    }

    /// What this thread's snapshot says of the facts change log.
    enum FactChangesInSnapshot {
        /// Outside a snapshot, or first asked in one: consider the log now. `begun`: the
        /// snapshot's transaction began earlier, so the log is read as of then.
        case due(begun: Bool)
        /// Considered in this snapshot already.
        case considered
        /// Reading the log failed in this snapshot: its facts must not come from the cache.
        case failed
    }

    func factChangesInSnapshot() -> FactChangesInSnapshot {
        guard let lazy = Self.current.transaction(of: self) as? LazyHotSnapshot else { return .due(begun: false) }
        if lazy.factChangesFailed { return .failed }
        // Once per snapshot, even when its transaction has begun already (a query that is
        // not a cached fact came first): the log is then read as of its beginning, which
        // is what the snapshot sees. Skipping it would leave a change committed before the
        // snapshot began, and not yet applied, in the cache.
        if lazy.caughtUp { return .considered }
        lazy.caughtUp = true
        return .due(begun: lazy.factsGenerationAtBegin != nil)
    }

    /// Reading the log failed: the rest of this thread's snapshot bypasses the cache.
    func factChangesFailedInSnapshot() {
        (Self.current.transaction(of: self) as? LazyHotSnapshot)?.factChangesFailed = true
    }

    /// ``ThreadSpecificSnapshot/factsGeneration(of:)`` of this thread's snapshot.
    func snapshotFactsGeneration() -> UInt64? { Self.current.factsGeneration(of: self) }

    func close() throws {
        for reader in readers { try reader.close() }
    }
}

/// A snapshot's read transaction on one leased reader, begun at its first query (BEGIN
/// DEFERRED then the query: SQLite's snapshot is the query's) and ended by ``end()``. Used
/// on one thread only, like the snapshot it belongs to.
final class LazyHotSnapshot: HotQueries, SnapshotTransaction {
    private let readers: HotReaders
    private var leased: Int?
    private(set) var factsGenerationAtBegin: UInt64?
    /// Whether the facts change log was considered in this snapshot already.
    var caughtUp = false
    /// Whether reading it failed (the cache is then not used in this snapshot).
    var factChangesFailed = false

    init(readers: HotReaders) { self.readers = readers }

    /// Runs `body` on the leased reader inside the transaction, beginning both if needed.
    func inTransaction<T>(_ body: (HotReader, Database) throws -> T) throws -> T {
        let reader = try begin()
        return try reader.queue.inDatabase { db in try body(reader, db) }
    }

    private func begin() throws -> HotReader {
        if let leased { return readers.reader(leased) }
        // Before the transaction's first read: an invalidation after this may concern a
        // change the transaction does not see.
        factsGenerationAtBegin = readers.facts.generation
        let index = readers.take()
        let reader = readers.reader(index)
        do {
            try reader.queue.inDatabase { db in
                try HotReaders.endLeftTransaction(db)
                // Prepared once per connection: `execute(sql:)` parsed it on every check.
                try db.cachedStatement(sql: "BEGIN DEFERRED").execute()
            }
        } catch {
            readers.giveBack(index)
            throw error
        }
        leased = index
        return reader
    }

    /// Ends the read transaction, if it began, and gives the reader back.
    func end() {
        guard let index = leased else { return }
        leased = nil
        readers.reader(index).queue.inDatabase { db in
            do { try db.cachedStatement(sql: "COMMIT").execute() } catch { try? db.execute(sql: "ROLLBACK") }
        }
        readers.giveBack(index)
    }

    var connection: any SQLConnection { LazyHotConnection(snapshot: self) }
    func account(emailKey: String) throws -> Account? { try inTransaction { try $0.account(emailKey: emailKey, $1) } }
    func account(id: String) throws -> Account? { try inTransaction { try $0.account(id: id, $1) } }
    func title(id: String) throws -> Title? { try inTransaction { try $0.title(id: id, $1) } }
    func membershipsWithBundles(accountID: String) throws -> [(Membership, TitleBundle)] {
        try inTransaction { try $0.membershipsWithBundles(accountID: accountID, $1) }
    }
    func meterCount(subject: String, start: Int64, end: Int64, title: String?) throws -> Int {
        try inTransaction { try $0.meterCount(subject: subject, start: start, end: end, title: title, $1) }
    }
    func hasRead(subject: String, title: String, article: String, start: Int64, end: Int64) throws -> Bool {
        try inTransaction { try $0.hasRead(subject: subject, title: title, article: article, start: start, end: end, $1) }
    }
}

/// A lazy snapshot's connection, for the hot path's other reads.
struct LazyHotConnection: SQLConnection {
    let snapshot: LazyHotSnapshot
    var dialect: SQLDialect { .sqlite }
    func lockMeters(_ subjects: [String]) throws {}

    @discardableResult
    func execute(_ sql: String, _ arguments: SQLArguments) throws -> Int {
        try snapshot.inTransaction { _, db in try GRDBConnection(db: db).execute(sql, arguments) }
    }

    func fetchAll(_ sql: String, _ arguments: SQLArguments) throws -> [SQLRow] {
        try snapshot.inTransaction { _, db in try GRDBConnection(db: db).fetchAll(sql, arguments) }
    }
}

/// A hot reader on its connection, as ``HotQueries``.
struct SQLiteHotQueries: HotQueries {
    let reader: HotReader
    let db: Database

    var connection: any SQLConnection { GRDBConnection(db: db) }
    func account(emailKey: String) throws -> Account? { try reader.account(emailKey: emailKey, db) }
    func account(id: String) throws -> Account? { try reader.account(id: id, db) }
    func title(id: String) throws -> Title? { try reader.title(id: id, db) }
    func membershipsWithBundles(accountID: String) throws -> [(Membership, TitleBundle)] {
        try reader.membershipsWithBundles(accountID: accountID, db)
    }
    func meterCount(subject: String, start: Int64, end: Int64, title: String?) throws -> Int {
        try reader.meterCount(subject: subject, start: start, end: end, title: title, db)
    }
    func hasRead(subject: String, title: String, article: String, start: Int64, end: Int64) throws -> Bool {
        try reader.hasRead(subject: subject, title: title, article: article, start: start, end: end, db)
    }
}

/// One read-only connection and its prepared hot statements. The statements are used only
/// inside `queue.inDatabase`, which serializes access: hence `@unchecked Sendable`.
final class HotReader: @unchecked Sendable {
    let queue: DatabaseQueue
    private var statements: Statements?

    /// The prepared statements; released before the connection closes (SQLite refuses to
    /// close a connection with live statements).
    private struct Statements {
        let accountByEmail: Statement
        let accountByID: Statement
        let meterAll: Statement
        let meterTitle: Statement
        let readInWindow: Statement
        let titleByID: Statement
        let membershipsWithBundles: Statement
    }

    /// A title and its tags (comma-joined: tags are slugs). Argument: the title id.
    static let titleSQL = Store.titleByIDSQL(.sqlite)

    /// An account's memberships, newest first, each with its plan's bundle in the same
    /// row (one statement instead of one per plan). Argument: the account id.
    static func membershipsSQL(_ dialect: SQLDialect) -> String { """
        SELECT \(membershipColumns(dialect))
        FROM memberships m LEFT JOIN plans p ON p.id = m.plan_id
        WHERE m.account_id = ? ORDER BY m.id DESC
        """ }

    /// A membership `m` with its plan `p`'s bundle: the membership's columns, `all_titles`
    /// and the listed titles joined by commas (``PlainHotQueries/membershipWithBundle(row:)``).
    static func membershipColumns(_ dialect: SQLDialect) -> String {
        "\(qualified(Membership.columns, "m")), p.all_titles, "
            + "(SELECT \(dialect == .sqlite ? "group_concat(title_id, ',')" : "string_agg(title_id, ',')") FROM plan_titles WHERE plan_id = m.plan_id)"
    }

    init(_ queue: DatabaseQueue) throws {
        self.queue = queue
        statements = try queue.inDatabase { db in
            Statements(
                accountByEmail: try db.makeStatement(sql: PlainHotQueries.accountByEmailSQL),
                accountByID: try db.makeStatement(sql: PlainHotQueries.accountByIDSQL),
                meterAll: try db.makeStatement(sql: MeterSQL.countAll),
                meterTitle: try db.makeStatement(sql: MeterSQL.countTitle),
                readInWindow: try db.makeStatement(sql: MeterSQL.readInWindow),
                titleByID: try db.makeStatement(sql: Self.titleSQL),
                membershipsWithBundles: try db.makeStatement(sql: Self.membershipsSQL(.sqlite)))
        }
    }

    /// Finalizes the statements, then closes the connection.
    func close() throws {
        queue.inDatabase { _ in statements = nil }
        try queue.close()
    }

    private func prepared(_ db: Database) throws -> Statements {
        guard let statements else { throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "the store is closed") }
        return statements
    }

    /// The account whose lower-cased email is `emailKey`.
    func account(emailKey: String, _ db: Database) throws -> Account? {
        try account(prepared(db).accountByEmail, key: emailKey, db)
    }

    /// The account with this id.
    func account(id: String, _ db: Database) throws -> Account? {
        try account(prepared(db).accountByID, key: id, db)
    }

    private func account(_ statement: Statement, key: String, _ db: Database) throws -> Account? {
        let handle = statement.sqliteStatement
        return try withText(handle, 1, key, db) { () throws -> Account? in
            try run(handle, db) { () throws -> Account? in
                guard try step(handle, db) else { return nil }
                return Account(
                    id: AccountID(rawValue: text(handle, 0) ?? ""),
                    email: text(handle, 1) ?? "",
                    displayName: text(handle, 2),
                    emailVerifiedAt: sqlite3_column_type(handle, 5) == SQLITE_NULL ? nil : Date(millis: sqlite3_column_int64(handle, 5)),
                    createdAt: Date(millis: sqlite3_column_int64(handle, 3)),
                    updatedAt: Date(millis: sqlite3_column_int64(handle, 4)),
                    signOutsEverywhere: Int(sqlite3_column_int64(handle, 6)))
            }
        }
    }

    /// The title with this id, with its tags.
    func title(id: String, _ db: Database) throws -> Title? {
        let handle = try prepared(db).titleByID.sqliteStatement
        return try withText(handle, 1, id, db) { () throws -> Title? in
            try run(handle, db) { () throws -> Title? in
                guard try step(handle, db) else { return nil }
                return Title(
                    id: TitleID(rawValue: text(handle, 0) ?? ""), name: text(handle, 1) ?? "", publisher: text(handle, 2) ?? "",
                    tags: Self.list(text(handle, 4)), createdAt: Date(millis: sqlite3_column_int64(handle, 3)),
                    retiredAt: sqlite3_column_type(handle, 5) == SQLITE_NULL ? nil : Date(millis: sqlite3_column_int64(handle, 5)))
            }
        }
    }

    /// Every membership of the account, newest first, with the titles its plan grants (a
    /// plan that no longer exists grants none).
    func membershipsWithBundles(accountID: String, _ db: Database) throws -> [(Membership, TitleBundle)] {
        let handle = try prepared(db).membershipsWithBundles.sqliteStatement
        return try withText(handle, 1, accountID, db) { () throws -> [(Membership, TitleBundle)] in
            try run(handle, db) { () throws -> [(Membership, TitleBundle)] in
                var found: [(Membership, TitleBundle)] = []
                while try step(handle, db) {
                    let membership = Membership(
                        id: sqlite3_column_int64(handle, 0),
                        accountID: AccountID(rawValue: text(handle, 1) ?? ""),
                        planID: PlanID(rawValue: text(handle, 2) ?? ""),
                        status: MembershipStatus(rawValue: text(handle, 3) ?? "") ?? .expired,
                        currentPeriodEnd: Date(millis: sqlite3_column_int64(handle, 4)),
                        gracePeriodEnd: sqlite3_column_type(handle, 5) == SQLITE_NULL ? nil : Date(millis: sqlite3_column_int64(handle, 5)),
                        cancelAtPeriodEnd: sqlite3_column_int64(handle, 6) != 0,
                        source: MembershipSource(rawValue: text(handle, 7) ?? ""),
                        createdAt: Date(millis: sqlite3_column_int64(handle, 8)),
                        updatedAt: Date(millis: sqlite3_column_int64(handle, 9)))
                    let bundle: TitleBundle
                    if sqlite3_column_type(handle, 10) != SQLITE_NULL, sqlite3_column_int64(handle, 10) != 0 {
                        bundle = .all
                    } else {
                        bundle = .titles(Set(Self.list(text(handle, 11)).map(TitleID.init(rawValue:))))
                    }
                    found.append((membership, bundle))
                }
                return found
            }
        }
    }

    /// The items of a `group_concat(…, ',')` of slugs.
    static func list(_ joined: String?) -> Set<String> {
        guard let joined, !joined.isEmpty else { return [] }
        return Set(joined.split(separator: ",").map(String.init))
    }

    /// Distinct articles read by `subject` in `(start, end]`, optionally of one title.
    func meterCount(subject: String, start: Int64, end: Int64, title: String?, _ db: Database) throws -> Int {
        let statements = try prepared(db)
        let handle = (title == nil ? statements.meterAll : statements.meterTitle).sqliteStatement
        try bind(handle, 2, start, db)
        try bind(handle, 3, end, db)
        return try withText(handle, 1, subject, db) { () throws -> Int in
            try withText(handle, 4, title, db) { () throws -> Int in
                try run(handle, db) { () throws -> Int in
                    guard try step(handle, db) else { return 0 }
                    return Int(sqlite3_column_int64(handle, 0))
                }
            }
        }
    }

    /// Whether `subject` read this article in `(start, end]`.
    func hasRead(subject: String, title: String, article: String, start: Int64, end: Int64, _ db: Database) throws -> Bool {
        let handle = try prepared(db).readInWindow.sqliteStatement
        try bind(handle, 2, start, db)
        try bind(handle, 3, end, db)
        return try withText(handle, 1, subject, db) { () throws -> Bool in
            try withText(handle, 4, title, db) { () throws -> Bool in
                try withText(handle, 5, article, db) { () throws -> Bool in
                    try run(handle, db) { () throws -> Bool in
                        guard try step(handle, db) else { return false }
                        return sqlite3_column_int64(handle, 0) != 0
                    }
                }
            }
        }
    }

    // MARK: - Statement access
    //
    // A hot statement is always left reset with no bindings: bind, step, read the
    // columns, reset, clear the bindings, in that order, and all of it while the bound
    // strings' bytes are alive (they are bound SQLITE_STATIC, without a copy). Every
    // SQLite return code is checked; a failure resets and clears the statement before it
    // is thrown as an error carrying the SQL.

    /// SQLite copies the bytes (SQLITE_TRANSIENT).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Binds an integer; on failure leaves the statement clean and throws.
    private func bind(_ handle: SQLiteStatement, _ index: Int32, _ value: Int64, _ db: Database) throws {
        let code = sqlite3_bind_int64(handle, index, value)
        if code != SQLITE_OK { throw failure(code, handle, db) }
    }

    /// Binds `value` without copying (SQLITE_STATIC: SQLite reads the bytes in place) and
    /// runs `body` while they are valid; `body` must end with ``run(_:_:_:)``, which
    /// resets and clears the statement before the bytes go away. Nil binds nothing.
    private func withText<T>(_ handle: SQLiteStatement, _ index: Int32, _ value: String?, _ db: Database, _ body: () throws -> T) throws -> T {
        guard var value else { return try body() }
        return try value.withUTF8 { bytes in
            let code = bytes.withMemoryRebound(to: CChar.self) { chars in
                if let address = chars.baseAddress {
                    sqlite3_bind_text64(handle, index, address, sqlite3_uint64(chars.count), nil, UInt8(SQLITE_UTF8))
                } else {
                    // An empty string may have no buffer; bind "" (SQLite copies it).
                    sqlite3_bind_text(handle, index, "", 0, Self.transient)
                }
            }
            if code != SQLITE_OK { throw failure(code, handle, db) }
            return try body()
        }
    }

    /// Runs `body` (steps and reads columns), then resets the statement and clears its
    /// bindings, whatever `body` did. A failure of either is thrown (after `body`'s own).
    private func run<T>(_ handle: SQLiteStatement, _ db: Database, _ body: () throws -> T) throws -> T {
        let value: T
        do {
            value = try body()
        } catch {
            // The step's error is the one to report; reset repeats it.
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            throw error
        }
        let reset = sqlite3_reset(handle)
        let clear = sqlite3_clear_bindings(handle)
        if reset != SQLITE_OK { throw failure(reset, handle, db) }
        if clear != SQLITE_OK { throw failure(clear, handle, db) }
        return value
    }

    /// Leaves the statement reset and unbound, and describes `code` with the statement's
    /// SQL.
    private func failure(_ code: Int32, _ handle: SQLiteStatement, _ db: Database) -> DatabaseError {
        let error = self.error(code, handle, db)
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        return error
    }

    private func error(_ code: Int32, _ handle: SQLiteStatement, _ db: Database) -> DatabaseError {
        let connection = db.sqliteConnection
        // The connection's message belongs to this failure only when its code matches.
        let message = sqlite3_extended_errcode(connection) & 0xFF == code & 0xFF
            ? String(cString: sqlite3_errmsg(connection))
            : String(cString: sqlite3_errstr(code))
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: String(cString: sqlite3_sql(handle)))
    }

    /// Steps once: true for a row, false when done; SQLite's error otherwise.
    private func step(_ handle: SQLiteStatement, _ db: Database) throws -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw error(code, handle, db)
        }
    }

    private func text(_ handle: SQLiteStatement, _ column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }
}
