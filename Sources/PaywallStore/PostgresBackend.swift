import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PaywallCore
import PostgresNIO
import Synchronization

/// The shared store: one PostgreSQL database that several `paywall serve` processes use at
/// once (through postgres-nio).
///
/// How what SQLite makes exact with its single writer stays exact across servers:
/// - Every write transaction runs `SERIALIZABLE` and is retried on a serialization
///   failure or deadlock (SQLSTATE 40001, 40P01): PostgreSQL then guarantees the outcome of
///   some one-at-a-time order, which is what every check-then-write was written for (one
///   trial per person, refresh rotation and reuse detection, gift-link monthly limits,
///   sign-in throttle counters, billing events; unique constraints back the first and the
///   last).
/// - Metered reads (the hot write) run `READ COMMITTED` holding a transaction-level
///   advisory lock per meter subject, taken before the count: the count statement then sees
///   every read committed for that subject, by any server, and no other can commit one
///   until this transaction ends. Every other insert of a read takes the same lock, so the
///   meter's last unit goes to exactly one check (and these checks never fail for
///   serialization, which a hot path would pay for in retries).
///
/// Why connections are leased synchronously here rather than through `PostgresClient`:
/// the store's operations are synchronous and run on the service's bounded thread pool
/// (the cooperative pool never blocks on the database); `PostgresClient` leases only to
/// async code. This pool is a lock, a condition and a list of idle connections; a query
/// is one `EventLoopFuture` waited on by the pool thread that owns the lease.
final class PostgresBackend: StoreBackend, @unchecked Sendable {
    let location: String
    let connections: PostgresConnectionPool
    let readOnly: Bool
    /// How long a statement waits for a lock (`lock_timeout`, from the busy timeout), in
    /// milliseconds.
    let lockTimeoutMillis: Int
    /// The snapshot a thread is in (see ``snapshot(_:)``).
    private static let current = ThreadSpecificSnapshot()

    /// Statement texts with `?` rewritten to `$n`, by original text.
    private let translations = Mutex<[String: String]>([:])

    /// At most this many attempts of one write transaction (serialization failures).
    static let maximumAttempts = 40

    /// The facts this server keeps, dropped on other servers' changes (``FactsCache``).
    let facts = FactsCache()
    /// Listens for changed facts while the store is open.
    private let listener: ChannelListener

    /// The channel facts' changes are announced on (by triggers, v12-facts-notifications).
    static let factsChannel = "paywall_facts"

    init(url: String, configuration: StoreConfiguration) throws(StoreError) {
        let parsed = try PostgresLocation(url: url)
        location = parsed.redacted
        readOnly = configuration.readOnly
        lockTimeoutMillis = PostgresLocation.lockMillis(configuration.busyTimeout)
        let cache = facts
        let pool = PostgresConnectionPool(
            configuration: try parsed.connectionConfiguration(lockTimeout: configuration.busyTimeout), maximum: max(4, configuration.maximumReaderCount * 4),
            waitLimit: configuration.busyTimeout, location: parsed.redacted, socketCheck: parsed.socketCheck,
            listening: (Self.factsChannel, { [facts] in facts.invalidate($0) }))
        connections = pool
        listener = ChannelListener(
            configuration: try parsed.connectionConfiguration(lockTimeout: configuration.busyTimeout), socketCheck: parsed.socketCheck, channel: Self.factsChannel,
            connected: { cache.setEnabled(true) },
            // The listener's connection lost: the pool's idle ones may be too (``PostgresConnectionPool/closeIdle()``).
            disconnected: { [weak pool] in cache.setEnabled(false); pool?.closeIdle() },
            payload: { cache.invalidate($0) },
            heartbeat: .milliseconds(Int64(max(0.05, configuration.listenerHeartbeat) * 1000)))
        do {
            try PostgresMigrator(backend: self).migrate(readOnly: configuration.readOnly, apply: configuration.migrate)
        } catch {
            connections.close()
            throw storeError(error)
        }
        listener.start()
    }

    // MARK: - Transactions

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try connections.with { connection in
            try transaction(connection, begin: Self.readOnlyBegin, body)
        }
    }

    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try retrying {
            try connections.with { connection in
                let result = try transaction(connection, begin: Self.serializableBegin, body)
                heardOwnNotifications(connection)
                return result
            }
        }
    }

    /// Returns once this connection's own notifications (a fact this write changed) have
    /// reached the facts cache. PostgreSQL sends a session its own notifications just
    /// before its next ReadyForQuery, which may follow the COMMIT's answer: one more round
    /// trip on the connection (answered after them) makes sure this server's cache no
    /// longer holds what the write changed when the write returns. Writes only: checks,
    /// which are many, pay nothing.
    ///
    /// The write has committed by then: if this round trip fails, the write is still
    /// reported as done (a caller told otherwise may retry what is stored: a refresh token
    /// rotated twice looks like reuse). The whole cache is dropped instead, and the
    /// connection closed.
    private func heardOwnNotifications(_ connection: PostgresConnection) {
        do {
            _ = try connection.answer(connection.query(PostgresQuery(unsafeSQL: "SELECT 1"), logger: PostgresSQL.logger), sql: "SELECT 1")
        } catch {
            facts.invalidate("")
            // Closed before the pool takes it back, so that no one leases it meanwhile.
            _ = try? connection.answer(connection.close(), sql: "closing the connection")
        }
    }

    func meteredReadBatch<T>(subjects: [String], _ body: (any SQLConnection, SQLiteMeterState?) throws -> T) throws -> T {
        try meteredWrite(subjects: subjects) { sql in try body(sql, nil) }
    }

    func meteredWrite<T>(subjects: [String], _ body: (any SQLConnection) throws -> T) throws -> T {
        try retrying {  // deadlocks only: the locks are taken in one order
            try connections.with { connection in
                let result = try transaction(connection, begin: Self.readCommittedBegin) { sql in
                    try sql.lockMeters(subjects)
                    return try body(sql)
                }
                heardOwnNotifications(connection)
                return result
            }
        }
    }

    /// A batch of metered reads in one transaction and one statement: the function of
    /// migration `v14-metered-reads-function` takes the subjects' meter locks and runs each
    /// read in order (count, "already read?" and the conditional insert together), a row
    /// per read. Nil when the server refused the batch (an unknown title): nothing is kept
    /// and the caller runs the batch read by read, each alone.
    ///
    /// Why: read by read with savepoints a metered read took six round trips on the group
    /// commit's one connection (BENCHMARKS.md, shared store: 610 metered checks a second);
    /// a statement per read, pipelined, still cost both sides a protocol exchange per read.
    /// `lockWaitMillis`: how long the batch waits for its subjects' locks, if not the busy
    /// timeout (``Store`` retries a batch that timed out read by read, briefly).
    func pipelinedMeteredReads(
        _ reads: [(read: ArticleRead, window: TimeInterval, limit: Int)], lockWaitMillis: Int? = nil
    ) throws -> [Result<Store.CountedRead, StoreError>]? {
        /// The server refused the batch: the caller goes read by read.
        struct StatementFailed: Error {}
        do {
            return try retrying {
                try connections.with { connection in
                    try transaction(connection, begin: Self.readCommittedBegin) { _ in
                        let binds: [PostgresData] = [
                            PostgresData(array: reads.map { PostgresData(string: $0.read.subject.key) }, elementType: .text),
                            PostgresData(array: reads.map { PostgresData(int64: $0.read.at.addingTimeInterval(-$0.window).millis) }, elementType: .int8),
                            PostgresData(array: reads.map { PostgresData(string: $0.read.titleID.rawValue) }, elementType: .text),
                            PostgresData(array: reads.map { PostgresData(string: $0.read.articleID) }, elementType: .text),
                            PostgresData(array: reads.map { PostgresData(int64: $0.read.at.millis) }, elementType: .int8),
                            PostgresData(array: reads.map { PostgresData(int64: Int64($0.limit)) }, elementType: .int8),
                        ]
                        if let lockWaitMillis {
                            let wait = PostgresQuery(unsafeSQL: "SET LOCAL lock_timeout = '\(max(1, lockWaitMillis))ms'")
                            _ = try connection.answer(connection.query(wait, logger: PostgresSQL.logger), sql: wait.sql)
                        }
                        let rows: [PostgresRow]
                        do {
                            // Prepared here too: on a new connection, a function a later
                            // migration dropped or changed fails the preparation.
                            let statement = try connections.prepared(Self.meteredReadsSQL, on: connection)
                            rows = try connection.answer(statement.execute(binds), sql: Self.meteredReadsSQL, limit: connections.answerLimit)
                        } catch where Self.refusesBatch(error) {
                            // The server refused it (an unknown title's constraint; a function
                            // a later migration changed): read by read, each on its own.
                            throw StatementFailed()
                        }
                        guard rows.count == reads.count else { preconditionFailure("\(reads.count) metered reads answered \(rows.count) rows") }
                        return try zip(reads, rows).map { item, row -> Result<Store.CountedRead, StoreError> in
                            let values = try row.map(PostgresSQL.preparedValue)
                            guard values.count == 4, case let .integer(already) = values[0], case let .integer(used) = values[1],
                                  case let .integer(inserted) = values[2] else { preconditionFailure("a metered read answered \(values)") }
                            // The account was deleted since the check read its facts: no read.
                            if inserted < 0, case let .account(id) = item.read.subject { return .failure(.accountNotFound(id.rawValue)) }
                            let oldest: Int64? = if case let .integer(first) = values[3] { first } else { nil }
                            let at = item.read.at.millis
                            // A recorded read (counted or re-read) is counted too.
                            let withThis = Date(millis: min(oldest ?? at, at))
                            return .success(already != 0 ? .init(outcome: .reread, oldestCounted: withThis, used: Int(used))
                                // Exactly 1 is a recorded read; anything else records nothing and
                                // is answered as spent (fail closed: a value this code does not
                                // know is a contract it does not know).
                                : inserted == 1 ? .init(outcome: .recorded(used: Int(used) + 1), oldestCounted: withThis, used: Int(used) + 1)
                                : .init(outcome: .exhausted(used: Int(used)), oldestCounted: oldest.map(Date.init(millis:)), used: Int(used)))
                        }
                    }
                }
            }
        } catch is StatementFailed {
            return nil  // rolled back by the transaction
        }
    }

    /// The statements every metered check runs, prepared once per connection
    /// (``PostgresConnectionPool/prepared(_:on:)``): as written in the store, `?` marks.
    /// A reader's facts too (its account, memberships with their plans' titles, trial and
    /// trial eligibility; a title): read once per reader and server (``FactsCache``), but a
    /// server sees many readers once. Sent unprepared, each was parsed and planned again:
    /// about 470 µs of PostgreSQL's CPU for a check of a reader new to the server
    /// (BENCHMARKS.md, eleventh session).
    static let preparedStatements: Set<String> = [
        MeterSQL.meterFactsPostgres, MeterSQL.countAll, MeterSQL.countTitle, MeterSQL.readInWindow, MeterSQL.oldestCounted,
        PlainHotQueries.accountByIDSQL, PlainHotQueries.accountByEmailSQL, HotReader.membershipsSQL(.postgres), PlainHotQueries.accountFactsPostgresSQL,
        Store.trialByAccountSQL, Store.trialTakenSQL, Store.titleByIDSQL(.postgres),
    ]

    /// Transaction control every check and batch sends, prepared the same way (they return
    /// no rows and change none: ``PostgresSQL/execute(_:_:)`` answers 0 for them).
    static let preparedCommands: Set<String> = [readOnlyBegin, readCommittedBegin, serializableBegin, "COMMIT"]
    static let readOnlyBegin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    static let readCommittedBegin = "BEGIN ISOLATION LEVEL READ COMMITTED"
    static let serializableBegin = "BEGIN ISOLATION LEVEL SERIALIZABLE"

    /// Takes the meter locks of `subjects`, sorted (transactions that lock several lock them
    /// in one order), in one statement.
    static func lockSubjects(_ subjects: [String]) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(Set(subjects).sorted())
        return PostgresQuery(unsafeSQL: lockSubjectsSQL, binds: binds)
    }

    static let lockSubjectsSQL = "SELECT count(pg_advisory_xact_lock(hashtextextended(s, 0))) FROM (SELECT s FROM unnest($1::text[]) AS s ORDER BY s) AS sorted"

    /// The batch of metered reads (migration `v14-metered-reads-function`): subjects,
    /// window starts, titles, articles, read times and limits, one element per read.
    static let meteredReadsSQL = """
        SELECT hit, used, inserted, oldest
        FROM paywall_metered_reads($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
        """

    func readHot<T>(_ body: (any HotQueries) throws -> T) throws -> T {
        if let snapshot = Self.current.current(of: self) { return try body(snapshot) }
        return try connections.with { connection in
            try body(PlainHotQueries(connection: PostgresSQL(connection: connection, backend: self)))
        }
    }

    /// Told by notifications (the listener turns the cache off while it cannot hear).
    func catchUpOnFactChanges() -> Bool { true }

    func snapshotFactsGeneration() -> UInt64? { Self.current.factsGeneration(of: self) }

    /// The snapshot begins at its first query: a check whose facts all come from the
    /// cache (``FactsCache``) leases no connection and sends nothing.
    var inSnapshot: Bool { Self.current.current(of: self) != nil }

    func snapshot<T>(_ body: () throws -> T) throws -> T {
        if Self.current.current(of: self) != nil { return try body() }
        let lazy = LazySnapshot(backend: self)
        let result: T
        do {
            result = try Self.current.with(owner: self, hot: PlainHotQueries(connection: lazy), transaction: lazy, body)
        } catch {
            lazy.rollback(after: error)
            throw error
        }
        try lazy.endOrThrow()
        return result
    }

    /// Runs `body` between `begin` and `COMMIT`; rolls back when it throws (a connection
    /// that cannot roll back is closed, not reused).
    private func transaction<T>(_ connection: PostgresConnection, begin: String, _ body: (any SQLConnection) throws -> T) throws -> T {
        let sql = PostgresSQL(connection: connection, backend: self)
        try sql.execute(begin)
        do {
            let result = try body(sql)
            try sql.execute("COMMIT")
            return result
        } catch {
            do { try sql.execute("ROLLBACK") } catch { throw PostgresConnectionPool.Broken(underlying: error) }
            throw error
        }
    }

    /// Runs `attempt` again while it fails for serialization (or a deadlock), with a short
    /// randomized backoff.
    private func retrying<T>(_ attempt: () throws -> T) throws -> T {
        var tries = 0
        while true {
            do {
                return try attempt()
            } catch where Self.isRetryable(error) && tries + 1 < Self.maximumAttempts {
                tries += 1
                let ceiling = min(50_000, 200 << min(tries, 8))  // µs
                usleep(UInt32.random(in: 0...UInt32(ceiling)))
            }
        }
    }

    /// Whether `error` is a lock wait that ran out (`lock_timeout`, SQLSTATE 55P03).
    static func isLockTimeout(_ error: any Error) -> Bool { sqlState(of: error) == "55P03" }

    static func isRetryable(_ error: any Error) -> Bool {
        let state = sqlState(of: error)
        return state == "40001" || state == "40P01" || PostgresConnectionPool.preparedStatementLost(error)
    }

    /// Whether the server refused a batch of metered reads for what the batch holds or for
    /// what the function has become (data, a constraint, an unknown or changed function, an
    /// error the function raised): each read alone then gets its own answer. Not for a
    /// statement timeout, an overload or a shutdown: reading one by one would only add load
    /// to a database that is already struggling. A lock timeout is retried read by read,
    /// briefly, by the store (``Store/commitMetered(_:lockWaitMillis:)``).
    static func refusesBatch(_ error: any Error) -> Bool {
        guard !isRetryable(error), !PostgresConnectionPool.connectionFailed(error), let state = sqlState(of: error) else { return false }
        return ["22", "23", "42", "P0"].contains(String(state.prefix(2)))
    }

    // MARK: - Statements

    /// `sql` with its `?` placeholders numbered (`$1`, `$2`…), outside quotes.
    func translated(_ sql: String) -> String {
        if let known = translations.withLock({ $0[sql] }) { return known }
        var result = ""
        result.reserveCapacity(sql.utf8.count + 16)
        var number = 0
        var quote: Character?
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
                result.append(character)
            } else if character == "'" || character == "\"" {
                quote = character
                result.append(character)
            } else if character == "?" {
                number += 1
                result += "$\(number)"
            } else {
                result.append(character)
            }
        }
        translations.withLock { $0[sql] = result }
        return result
    }

    // MARK: - Errors and health

    static func owns(_ error: any Error) -> Bool {
        error is PSQLError || error is StatementFailure || error is PostgresConnectionPool.Broken || error is PostgresConnectionPool.Unavailable
            || error is NIOCore.IOError || error is ChannelError || error is NIOConnectionError
    }

    /// The SQLSTATE of a server error.
    static func sqlState(of error: any Error) -> String? {
        if let error = error as? StatementFailure { return error.sqlState }
        return (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    static func constraint(of error: any Error) -> SQLConstraint? {
        guard let state = sqlState(of: error), state.hasPrefix("23") else { return nil }
        switch state {
        case "23505": return .unique
        case "23503": return .foreignKey
        case "23514": return .check
        case "23502": return .notNull
        default: return .other
        }
    }

    func storeError(_ error: any Error) -> StoreError {
        if let storeError = error as? StoreError { return storeError }
        if let unavailable = error as? PostgresConnectionPool.Unavailable {
            return .unavailable(location: location, detail: unavailable.detail)
        }
        if let broken = error as? PostgresConnectionPool.Broken { return storeError(broken.underlying) }
        if let error = error as? StatementFailure {
            guard let state = error.sqlState else { return .unavailable(location: location, detail: error.message) }
            return serverError(state: state, message: error.message, sql: error.sql)
        }
        if let error = error as? PSQLError {
            guard error.code == .server, let info = error.serverInfo else {
                return .unavailable(location: location, detail: Self.describe(error))
            }
            return serverError(state: info[.sqlState] ?? "?????", message: info[.message] ?? "unknown error", sql: error.query?.sql)
        }
        return .unavailable(location: location, detail: String(describing: error))
    }

    /// The store's error for the server's answer `state` (SQLSTATE) and `message`.
    private func serverError(state: String, message: String, sql: String?) -> StoreError {
        switch state {
        case "25006": return .readOnly(path: location)
        // Wrong password or role, no such database: the server cannot be used as given.
        case "28P01", "28000", "3D000": return .unavailable(location: location, detail: message + "; check the URL's user, password and database name")
        // statement_timeout: the database is too slow to answer in time.
        case "57014": return .unavailable(location: location, detail: message)
        case "40001", "40P01", "55P03": return .locked(path: location, timeoutSeconds: connections.waitLimit)
        case "53100": return .diskFull(path: location)
        // And the transient ones a failover or a sick server gives (25P03 idle-in-transaction
        // timeout, 25P04 transaction timeout, 40003 statement completion unknown, class 58
        // system errors): 503, not 500 (found in review).
        case "25P03", "25P04", "40003": return .unavailable(location: location, detail: message)
        case _ where state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53") || state.hasPrefix("58"):
            return .unavailable(location: location, detail: message)
        default:
            return .postgres(location: location, sqlState: state, message: message, sql: sql)
        }
    }

    /// A client-side failure (connection refused, closed, authentication) in words.
    static func describe(_ error: PSQLError) -> String {
        if error.code == .authMechanismRequiresPassword {
            return "the server asks for a password and the URL gives none (postgres://user:PASSWORD@host:port/database; percent-encode it)"
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        if let message = error.serverInfo?[.message] { return "\(error.code): \(message)" }
        return "\(error.code)"
    }

    func health() throws -> StoreHealth {
        try read { sql in
            let applied = try sql.fetchValues(String.self, "SELECT identifier FROM paywall_migrations ORDER BY applied_at, identifier")
            let known = PostgresMigrations.identifiers
            // PostgreSQL checks pages and foreign keys as it writes: nothing to scan for.
            return StoreHealth(
                integrity: ["ok"], foreignKeyViolations: [],
                appliedMigrations: known.filter(applied.contains), pendingMigrations: known.filter { !applied.contains($0) })
        }
    }

    func close() throws {
        listener.stop()
        facts.setEnabled(false)
        connections.close()
    }

    /// The payloads of notifications on `channel`, on a connection of their own, across
    /// reconnections (with a backoff up to 5 s while the server is away). After every
    /// (re)connection an empty payload is yielded: notifications sent while disconnected
    /// are lost, so the listener should look at the database again.
    func notifications(channel: String) -> AsyncStream<String> {
        AsyncStream { continuation in
            let listener = ChannelListener(
                configuration: connections.configuration, socketCheck: connections.socketCheck, channel: channel,
                connected: { continuation.yield("") }, disconnected: {}, payload: { continuation.yield($0) })
            listener.start()
            continuation.onTermination = { _ in listener.stop() }
        }
    }
}

/// A connection of its own listening on a channel, reconnecting with a backoff (up to 5 s)
/// while the server is away; all of it on one NIO event loop, never on Swift's cooperative
/// pool (which request handling may keep busy: the facts cache must hear of changes even
/// then). `connected` runs once `LISTEN` is in place, `disconnected` when the connection is
/// lost (notifications sent meanwhile are lost: the listener's owner must forget what it
/// cached).
final class ChannelListener: @unchecked Sendable {
    private let configuration: PostgresConnection.Configuration
    private let channel: String
    private let connected: @Sendable () -> Void
    private let disconnected: @Sendable () -> Void
    private let payload: @Sendable (String) -> Void
    private let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
    // Touched on `eventLoop` only.
    private var connection: PostgresConnection?
    private var stopped = false
    private var delay: TimeAmount = .milliseconds(100)
    private var heartbeat: RepeatedTask?
    /// Pings sent and not yet answered (the heartbeat's count, on `eventLoop`).
    private var unanswered = 0

    /// How often the listening connection is asked `SELECT 1` (5 s unless the store's
    /// configuration says). A connection that died without a reset (a NAT entry timed out,
    /// a partition) says nothing and is never seen to close; it only ever listened, so
    /// without a question it would be taken for alive, and the facts cache kept on while it
    /// hears nothing. Two pings unanswered: closed, which turns the cache off
    /// (``disconnected``) and reconnects.
    private let heartbeatInterval: TimeAmount

    /// Who may answer on the server's socket (``PostgresLocation/SocketCheck``).
    private let socketCheck: PostgresLocation.SocketCheck?

    init(configuration: PostgresConnection.Configuration, socketCheck: PostgresLocation.SocketCheck? = nil, channel: String, connected: @escaping @Sendable () -> Void,
         disconnected: @escaping @Sendable () -> Void, payload: @escaping @Sendable (String) -> Void, heartbeat: TimeAmount = .seconds(5)) {
        self.configuration = configuration
        self.socketCheck = socketCheck
        self.heartbeatInterval = heartbeat
        self.channel = channel
        self.connected = connected
        self.disconnected = disconnected
        self.payload = payload
    }

    func start() { eventLoop.execute { self.connect() } }

    func stop() {
        eventLoop.execute {
            self.stopped = true
            self.heartbeat?.cancel()
            self.heartbeat = nil
            let _: EventLoopFuture<Void>? = self.connection?.close()
        }
    }

    /// Asks the listening connection `SELECT 1` every heartbeat interval; closes it when
    /// the previous two went unanswered (or failed).
    private func startHeartbeat(_ connection: PostgresConnection) {
        heartbeat?.cancel()
        unanswered = 0
        heartbeat = eventLoop.scheduleRepeatedTask(initialDelay: heartbeatInterval, delay: heartbeatInterval) { task in
            guard !self.stopped, self.connection === connection, !connection.isClosed else { return task.cancel() }
            if self.unanswered >= 2 {
                task.cancel()
                let _: EventLoopFuture<Void> = connection.close()
                return
            }
            self.unanswered += 1
            connection.query(PostgresQuery(unsafeSQL: "SELECT 1"), logger: PostgresSQL.logger).hop(to: self.eventLoop).whenComplete { result in
                switch result {
                case .success: self.unanswered = 0
                case .failure: let _: EventLoopFuture<Void> = connection.close()
                }
            }
        }
    }

    private func connect() {
        guard !stopped else { return }
        if let socketCheck, (try? socketCheck.verify()) == nil { return retry() }
        PostgresConnection.connect(on: eventLoop, configuration: configuration, id: 0, logger: PostgresSQL.logger).whenComplete { result in
            guard case let .success(connection) = result else { return self.retry() }
            if self.stopped {
                let _: EventLoopFuture<Void> = connection.close()
                return
            }
            self.connection = connection
            let payload = self.payload
            connection.addListener(channel: self.channel) { _, notification in payload(notification.payload) }
            // The channel is a constant of this module, not input.
            connection.query(PostgresQuery(unsafeSQL: "LISTEN \(self.channel)"), logger: PostgresSQL.logger).whenComplete { listened in
                if case .success = listened {
                    self.delay = .milliseconds(100)
                    self.startHeartbeat(connection)
                    self.connected()
                } else {
                    let _: EventLoopFuture<Void> = connection.close()
                }
            }
            connection.closeFuture.hop(to: self.eventLoop).whenComplete { _ in
                self.heartbeat?.cancel()
                self.heartbeat = nil
                self.connection = nil
                self.disconnected()
                self.retry()
            }
        }
    }

    private func retry() {
        guard !stopped else { return }
        eventLoop.scheduleTask(in: delay) { self.connect() }
        delay = min(delay * 2, .seconds(5))
    }
}

/// A read-only snapshot that leases its connection and begins its transaction at its first
/// statement (used on one thread, inside ``PostgresBackend/snapshot(_:)``).
final class LazySnapshot: SQLConnection, SnapshotTransaction {
    let backend: PostgresBackend
    private var open: (connection: PostgresConnection, sql: PostgresSQL)?
    private(set) var factsGenerationAtBegin: UInt64?

    init(backend: PostgresBackend) { self.backend = backend }

    var dialect: SQLDialect { .postgres }

    /// The BEGIN sent with the first statement, not yet confirmed.
    private var pendingBegin: EventLoopFuture<Void>?

    /// Leases the connection and sends BEGIN without waiting for it: it travels with the
    /// first statement (one round trip; a connection answers in order).
    private func sql() throws -> PostgresSQL {
        if let open { return open.sql }
        if factsGenerationAtBegin == nil { factsGenerationAtBegin = backend.facts.generation }
        let connection = try backend.connections.lease()
        do {
            pendingBegin = try backend.connections.prepared(PostgresBackend.readOnlyBegin, on: connection).execute([]).map { _ in }
        } catch {
            backend.connections.giveBack(connection, reusable: !PostgresConnectionPool.connectionFailed(error))
            throw error
        }
        let sql = PostgresSQL(connection: connection, backend: backend)
        open = (connection, sql)
        return sql
    }

    /// Runs `statement`, then confirms the BEGIN sent before it (its failure is the error).
    private func run<T>(_ statement: (PostgresSQL) throws -> T) throws -> T {
        let sql = try self.sql()
        let result: Result<T, any Error> = Result { try statement(sql) }
        do {
            if let begin = pendingBegin {
                pendingBegin = nil
                _ = try sql.connection.answer(begin, sql: PostgresBackend.readOnlyBegin)
            }
            return try result.get()
        } catch {
            // Noted here, where the error is still the connection's own: the store's callers
            // see it wrapped (a ``StoreError``) by the time the snapshot rolls back.
            if PostgresConnectionPool.connectionFailed(error) { connectionFailed = true }
            throw error
        }
    }

    /// A statement of this snapshot failed in a way that leaves its connection unusable.
    private var connectionFailed = false

    @discardableResult
    func execute(_ sql: String, _ arguments: SQLArguments) throws -> Int { try run { try $0.execute(sql, arguments) } }
    func fetchAll(_ sql: String, _ arguments: SQLArguments) throws -> [SQLRow] { try run { try $0.fetchAll(sql, arguments) } }
    func lockMeters(_ subjects: [String]) throws {}  // read-only

    /// Rolls back (the body failed with `failure`) and gives the connection back, if one
    /// was taken. Not for reuse when `failure` says the connection is unusable, its
    /// prepared statements lost included (26000 after a `DISCARD ALL`): a plain `ROLLBACK`
    /// still succeeds on it, and the next check leasing it would fail the same way.
    func rollback(after failure: any Error) {
        guard let open else { return }
        self.open = nil
        var reusable = !connectionFailed && !PostgresConnectionPool.connectionFailed(failure)
        if let begin = pendingBegin {
            pendingBegin = nil
            do { _ = try open.connection.answer(begin, sql: PostgresBackend.readOnlyBegin) } catch {
                if PostgresConnectionPool.connectionFailed(error) { reusable = false }
            }
        }
        do {
            try open.sql.execute("ROLLBACK")
            backend.connections.giveBack(open.connection, reusable: reusable)
        } catch {
            backend.connections.giveBack(open.connection, reusable: false)
        }
    }

    /// Ends the read-only transaction. The COMMIT is sent and the connection given back at
    /// once: its next user's statements queue behind the COMMIT on the connection, and a
    /// read-only transaction has nothing to lose (a connection that died fails its next
    /// user's statement, and the pool drops it then).
    func endOrThrow() throws {
        guard let open else { return }
        self.open = nil
        if let begin = pendingBegin {
            pendingBegin = nil
            _ = try open.connection.answer(begin, sql: PostgresBackend.readOnlyBegin)
        }
        if let commit = try? backend.connections.prepared("COMMIT", on: open.connection) {
            _ = commit.execute([])
            backend.connections.giveBack(open.connection, reusable: true)
        } else {
            backend.connections.giveBack(open.connection, reusable: false)
        }
    }
}

/// One leased connection inside a transaction (or a single hot statement), as
/// ``SQLConnection``.
struct PostgresSQL: SQLConnection {
    let connection: PostgresConnection
    let backend: PostgresBackend
    /// How long each statement's answer is waited for (``PostgresConnection/answerLimit``);
    /// nil for the migrator, which lifts the server's statement timeout too.
    var answerLimit: TimeAmount?
    /// The meter locks this transaction holds (taken once each).
    private let held = HeldLocks()

    private final class HeldLocks {
        var subjects: Set<String> = []
    }

    init(connection: PostgresConnection, backend: PostgresBackend) {
        self.connection = connection
        self.backend = backend
        self.answerLimit = backend.connections.answerLimit
    }

    var dialect: SQLDialect { .postgres }

    static let logger = Logger(label: "paywall.store.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    @discardableResult
    func execute(_ sql: String, _ arguments: SQLArguments) throws -> Int {
        if PostgresBackend.preparedCommands.contains(sql) {
            _ = try fetchPrepared(sql, arguments)
            return 0
        }
        return try run(sql, arguments).metadata.rows ?? 0
    }

    func fetchAll(_ sql: String, _ arguments: SQLArguments) throws -> [SQLRow] {
        if PostgresBackend.preparedStatements.contains(sql) { return try fetchPrepared(sql, arguments) }
        let result = try run(sql, arguments)
        guard let first = result.rows.first else { return [] }
        let columns = SQLColumns(first.map(\.columnName))
        return try result.rows.map { row in SQLRow(columns: columns, values: try row.map(Self.value)) }
    }

    /// Takes the meter locks of `subjects` (sorted: transactions that take several take
    /// them in one order) until the transaction ends.
    func lockMeters(_ subjects: [String]) throws {
        let missing = Set(subjects).subtracting(held.subjects)
        guard !missing.isEmpty else { return }
        let lock = PostgresBackend.lockSubjects(Array(missing))
        _ = try connection.answer(connection.query(lock, logger: Self.logger), sql: lock.sql, limit: answerLimit)
        held.subjects.formUnion(missing)
    }

    private func run(_ sql: String, _ arguments: SQLArguments) throws -> PostgresQueryResult {
        var binds = PostgresBindings(capacity: arguments.values.count)
        for value in arguments.values {
            switch value {
            case .null: binds.appendNull()
            case let .integer(number): binds.append(number)
            case let .real(number): binds.append(number)
            case let .text(text): binds.append(text)
            case let .blob(bytes): binds.append(ByteBuffer(bytes: bytes))
            }
        }
        let query = PostgresQuery(unsafeSQL: backend.translated(sql), binds: binds)
        return try connection.answer(connection.query(query, logger: Self.logger), sql: query.sql, limit: answerLimit)
    }

    /// Runs one of the hot path's statements (``PostgresBackend/preparedStatements``)
    /// prepared on this connection; its rows.
    func fetchPrepared(_ sql: String, _ arguments: SQLArguments) throws -> [SQLRow] {
        let translated = backend.translated(sql)
        let statement = try backend.connections.prepared(translated, on: connection)
        let rows = try connection.answer(statement.execute(arguments.values.map(Self.data)), sql: translated, limit: answerLimit)
        guard let first = rows.first else { return [] }
        let columns = SQLColumns(first.map(\.columnName))
        return try rows.map { row in SQLRow(columns: columns, values: try row.map(Self.preparedValue)) }
    }

    /// A cell of a prepared statement's row. Its description comes from the statement's
    /// preparation, when the server cannot know the result format yet and says text; every
    /// execution asks for binary results (postgres-nio), and that is what the bytes are.
    static func preparedValue(_ cell: PostgresCell) throws -> SQLValue {
        var cell = cell
        cell.format = .binary
        return try value(cell)
    }

    /// A value as a prepared statement's argument.
    static func data(_ value: SQLValue) -> PostgresData {
        switch value {
        case .null: return .null
        case let .integer(number): return PostgresData(int64: number)
        case let .real(number): return PostgresData(double: number)
        case let .text(text): return PostgresData(string: text)
        case let .blob(bytes): return PostgresData(bytes: bytes)
        }
    }

    /// A cell as the store's value: integers of every width, flags (bool, from `EXISTS`)
    /// as 0/1, numeric (from `SUM`) as text, bytes, text.
    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        do {
            return try decode(cell)
        } catch {
            preconditionFailure("column '\(cell.columnName)' of type \(cell.dataType) (\(cell.format)) does not decode: \(String(reflecting: error))")
        }
    }

    private static func decode(_ cell: PostgresCell) throws -> SQLValue {
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .bytea: return .blob(try cell.decode(Data.self))
        case .numeric: return .text("\(try cell.decode(Decimal.self))")
        default: return .text(try cell.decode(String.self))
        }
    }
}

/// A statement's failure, as the store needs it. postgres-nio's prepared-statement API (the
/// one that can be used without `async`, and pipelined) reports errors in its older shape
/// (`PostgresError`); this keeps the server's SQLSTATE and message, so retries, constraint
/// checks and error messages treat them as any other statement's. Also what a wait on a
/// connection that closed fails with (``ConnectionWatch``).
struct StatementFailure: Error, CustomStringConvertible {
    /// The server's SQLSTATE; nil when it was not the server's answer (the connection failed).
    let sqlState: String?
    let message: String
    let sql: String

    var description: String { "\(sqlState ?? "connection"): \(message)" }

    /// `error` as a ``StatementFailure`` when it is postgres-nio's older shape; else as it is.
    static func normalized(_ error: any Error, sql: String) -> any Error {
        guard let error = error as? PostgresError else { return error }
        switch error {
        case let .server(answer):
            return StatementFailure(sqlState: answer.fields[.sqlState], message: answer.fields[.message] ?? "unknown error", sql: sql)
        case let .protocol(detail):
            return StatementFailure(sqlState: nil, message: detail, sql: sql)
        case .connectionClosed:
            return StatementFailure(sqlState: nil, message: "connection closed", sql: sql)
        }
    }

}

extension PostgresConnection {
    /// Waits for the answer to a statement (or a preparation, or the closing) sent on this
    /// connection; fails when the connection closes first (``ConnectionWatch``). Every
    /// wait on a connection goes through here.
    func answer<T>(_ future: EventLoopFuture<T>, sql: String, limit: TimeAmount? = PostgresConnection.answerLimit) throws -> T {
        do {
            return try ConnectionWatch.shared.answer(future, on: self, sql: sql, limit: limit)
        } catch {
            throw StatementFailure.normalized(error, sql: sql)
        }
    }
}

extension PostgresConnection {
    /// How long a caller waits for an answer before giving the connection up. Statements
    /// wait ``PostgresConnectionPool/answerLimit`` (the server's `statement_timeout` and a
    /// margin); this is for what involves no lock wait (a health probe, a preparation, the
    /// closing). Why a limit of our own: the statement timeout is the server's, and a server
    /// or network that stalls without closing the connection (a frozen process, a
    /// partition) never sends it; a request waited as long as the stall (found in review:
    /// access checks hung for minutes). Migrations, which lift the statement timeout, wait
    /// without one.
    static let answerLimit: TimeAmount = .seconds(40)
}

/// Fails what callers wait for on a connection when it closes.
///
/// Why: postgres-nio (1.33) hands each statement to its channel without a promise for the
/// write itself. A statement written just as the connection closes (PostgreSQL restarting)
/// is dropped with its answer, and a caller blocked on that answer waits for ever: a server
/// hung in its readiness check after a restart (CI, `PostgresRestartTests`). One callback
/// per connection on its close, not one per statement: those would pile up on a connection
/// that lives for hours.
final class ConnectionWatch: Sendable {
    static let shared = ConnectionWatch()

    /// A watched connection and the callers waiting on it (by number), each with how to
    /// fail it.
    private struct Watched {
        let connection: PostgresConnection
        var waiting: [Int: @Sendable () -> Void] = [:]
    }

    private struct State {
        var watched: [ObjectIdentifier: Watched] = [:]
        var next = 0
    }

    private let state = Mutex(State())

    /// `future`'s value (an answer on `connection`), or a connection failure if the
    /// connection closes before it comes.
    func answer<T>(_ future: EventLoopFuture<T>, on connection: PostgresConnection, sql: String, limit: TimeAmount? = nil) throws -> T {
        let promise = future.eventLoop.makePromise(of: T.self)
        future.cascade(to: promise)
        if let limit {
            // No answer in time: the caller is told the connection failed, and the connection
            // is closed (a late answer must not be read as the next statement's).
            let timer = future.eventLoop.scheduleTask(in: limit) {
                promise.fail(StatementFailure(sqlState: nil, message: "no answer in \(limit.nanoseconds / 1_000_000_000) s: the connection is given up", sql: sql))
                let closing: EventLoopFuture<Void> = connection.close()
                _ = closing
            }
            future.whenComplete { _ in timer.cancel() }
        }
        let key = ObjectIdentifier(connection)
        let (ticket, isNew): (Int, Bool) = state.withLock { state in
            state.next += 1
            var isNew = false
            // An entry for another connection at a reused address: this one replaces it.
            if state.watched[key].map({ $0.connection !== connection }) ?? true {
                state.watched[key] = Watched(connection: connection)
                isNew = true
            }
            state.watched[key]?.waiting[state.next] = { promise.fail(StatementFailure(sqlState: nil, message: "connection closed", sql: sql)) }
            return (state.next, isNew)
        }
        if isNew {
            // Fires at once when it closed already.
            connection.closeFuture.whenComplete { [self] _ in closed(connection) }
        }
        defer { state.withLock { _ = $0.watched[key]?.waiting.removeValue(forKey: ticket) } }
        return try promise.futureResult.wait()
    }

    private func closed(_ connection: PostgresConnection) {
        let key = ObjectIdentifier(connection)
        let failers: [@Sendable () -> Void] = state.withLock { state in
            guard let entry = state.watched[key], entry.connection === connection else { return [] }
            state.watched[key] = nil
            return Array(entry.waiting.values)
        }
        for fail in failers { fail() }
    }
}

/// Connections leased by one thread at a time: the idle ones in a list, a condition to
/// wait on when all are busy.
final class PostgresConnectionPool: @unchecked Sendable {
    /// A connection that could not be returned to a clean state.
    struct Broken: Error { let underlying: any Error }
    /// No connection could be made or leased in time.
    struct Unavailable: Error { let detail: String }

    let configuration: PostgresConnection.Configuration
    let maximum: Int
    /// How long a lease waits for a connection (seconds).
    let waitLimit: Double
    /// How long a statement's answer is waited for: the server's statement timeout (30 s,
    /// or the busy timeout if longer: ``PostgresLocation/connectionConfiguration``) and a
    /// margin (``PostgresConnection/answerLimit``).
    var answerLimit: TimeAmount { .milliseconds(Int64(max(30, waitLimit) * 1000) + 10_000) }
    let location: String
    private let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    private let condition = NSCondition()
    private var idle: [PostgresConnection] = []
    private var open = 0
    private var closed = false
    private var nextID = 0
    /// Statements prepared on each open connection, by their SQL (``prepared(_:on:)``).
    private var prepared: [ObjectIdentifier: [String: PreparedQuery]] = [:]
    private static let logger = Logger(label: "paywall.store.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A channel every connection listens on, and what to do with its notifications.
    let listening: (channel: String, handle: @Sendable (String) -> Void)?

    /// Who may answer on the server's socket (``PostgresLocation/SocketCheck``).
    let socketCheck: PostgresLocation.SocketCheck?

    init(configuration: PostgresConnection.Configuration, maximum: Int, waitLimit: Double, location: String,
         socketCheck: PostgresLocation.SocketCheck? = nil, listening: (channel: String, handle: @Sendable (String) -> Void)? = nil) {
        self.configuration = configuration
        self.socketCheck = socketCheck
        self.maximum = maximum
        self.waitLimit = waitLimit
        self.location = location
        self.listening = listening
    }

    /// A new connection, listening on ``listening``'s channel. Why every connection: a
    /// session receives its own transaction's notifications before the answer to its
    /// COMMIT, so a server's own change of a fact has left its cache by the time the write
    /// returns (the separate listener alone would hear of it a moment later).
    private func connect(id: Int) throws -> PostgresConnection {
        try socketCheck?.verify()
        let connection = try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: Self.logger).wait()
        guard let listening else { return connection }
        do {
            let handle = listening.handle
            connection.addListener(channel: listening.channel) { _, notification in handle(notification.payload) }
            // The channel is a constant of this module, not input.
            _ = try connection.answer(connection.query(PostgresQuery(unsafeSQL: "LISTEN \(listening.channel)"), logger: Self.logger), sql: "LISTEN")
            return connection
        } catch {
            let _: EventLoopFuture<Void> = connection.close()
            throw error
        }
    }

    /// Runs `body` on a leased connection. A connection whose failure was not the
    /// server's answer to a statement (it dropped, or could not roll back) is closed.
    func with<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try lease()
        do {
            let result = try body(connection)
            giveBack(connection, reusable: true)
            return result
        } catch {
            // The body's own errors (bad input, not found) leave a clean connection: a
            // transaction was rolled back, or none was open. Only a connection that failed
            // (or could not roll back) is closed.
            giveBack(connection, reusable: !Self.connectionFailed(error))
            throw error
        }
    }

    /// `sql` prepared on `connection`: parsed and planned by the server once per connection
    /// rather than on every execution, and executed without sending it again. Measured
    /// (BENCHMARKS.md, shared store): pgbench ran a metered read's statement 2.0x faster
    /// prepared than sent whole; postgres-nio's parse-and-describe per statement was 16% of
    /// a server's CPU on metered checks. Only the hot path's few fixed statements.
    func prepared(_ sql: String, on connection: PostgresConnection) throws -> PreparedQuery {
        let key = ObjectIdentifier(connection)
        condition.lock()
        let found = prepared[key]?[sql]
        condition.unlock()
        if let found { return found }
        let made = try connection.answer(connection.prepare(query: sql), sql: sql, limit: answerLimit)
        condition.lock()
        // Only while the connection is open: a closed one's entry was dropped, and its
        // identifier may come back for a new connection.
        if !connection.isClosed { prepared[key, default: [:]][sql] = made }
        condition.unlock()
        return made
    }

    /// Forgets what was prepared on `connection` (closing it). Call with the lock held.
    private func forgetPrepared(_ connection: PostgresConnection) {
        prepared[ObjectIdentifier(connection)] = nil
    }

    /// Whether `error` means the connection itself is unusable (or its prepared
    /// statements are: it is closed so that they are forgotten with it).
    static func connectionFailed(_ error: any Error) -> Bool {
        if error is Broken { return true }
        if let error = error as? PSQLError { return error.code != .server }
        if let error = error as? StatementFailure { return error.sqlState == nil || preparedStatementLost(error) }
        return error is NIOCore.IOError || error is ChannelError
    }

    /// Whether a prepared statement no longer holds on its connection: the server forgot
    /// it (26000: `DISCARD ALL`, a pooler between us), or a schema change altered what it
    /// returns (0A000, "cached plan must not change result type", on every execution until
    /// it is prepared again). The connection is dropped and the work tried again on another.
    static func preparedStatementLost(_ error: any Error) -> Bool {
        guard let error = error as? StatementFailure else { return false }
        return error.sqlState == "26000" || error.sqlState == "0A000"
    }

    func lease() throws -> PostgresConnection {
        if NoWaitScope.refuse() { throw Unavailable(detail: "needs the database inside a no-wait attempt") }
        let deadline = Date().addingTimeInterval(waitLimit)
        condition.lock()
        while true {
            if closed {
                condition.unlock()
                throw Unavailable(detail: "the store is closed")
            }
            if let connection = idle.popLast() {
                if connection.isClosed {
                    open -= 1
                    forgetPrepared(connection)
                    continue
                }
                condition.unlock()
                return connection
            }
            if open < maximum {
                open += 1
                nextID += 1
                let id = nextID
                condition.unlock()
                do {
                    return try connect(id: id)
                } catch {
                    condition.lock()
                    open -= 1
                    condition.signal()
                    condition.unlock()
                    if let error = error as? PSQLError, error.code == .server {
                        throw error  // authentication, unknown database: the server's own words
                    }
                    // The socket's check (``PostgresLocation/SocketCheck``): absent, or not
                    // PostgreSQL's to be sent the password.
                    if let error = error as? Unavailable { throw error }
                    throw Unavailable(detail: "cannot connect: \((error as? PSQLError).map(PostgresBackend.describe) ?? String(describing: error))")
                }
            }
            if !condition.wait(until: deadline) {
                condition.unlock()
                throw Unavailable(detail: "all \(maximum) connections busy for \(waitLimit) s")
            }
        }
    }

    func giveBack(_ connection: PostgresConnection, reusable: Bool) {
        condition.lock()
        if reusable, !closed, !connection.isClosed {
            idle.append(connection)
            condition.signal()
            condition.unlock()
            return
        }
        open -= 1
        forgetPrepared(connection)
        condition.signal()
        condition.unlock()
        try? connection.close().wait()
    }

    /// A store dropped without ``close()`` (its service failed to start) still closes its
    /// connections (postgres-nio requires it).
    deinit { close() }

    /// Closes the connections waiting idle, keeping the pool open: after the listener lost
    /// its connection, those opened before may be as dead without knowing it (a failover
    /// that moved the address, a partition dropping packets without a reset), and each would
    /// hold a request for the whole answer limit, 40 s, before failing (found in review).
    /// New ones are opened as needed.
    func closeIdle() {
        for connection in takeIdle(closing: false) { connection.close().whenComplete { _ in } }
    }

    /// Closes the idle connections; leased ones close when given back.
    func close() {
        for connection in takeIdle(closing: true) { try? connection.close().wait() }
    }

    /// Takes the idle connections out of the pool (which stays open unless `closing`),
    /// waking the waiters: what they wait for changed.
    private func takeIdle(closing: Bool) -> [PostgresConnection] {
        condition.lock()
        defer { condition.unlock() }
        if closing { closed = true }
        let taken = idle
        idle = []
        open -= taken.count
        for connection in taken { forgetPrepared(connection) }
        condition.broadcast()
        return taken
    }
}

/// A `postgres://user:password@host:port/database?sslmode=…&search_path=…` URL, or one
/// that reaches the server through its unix-domain socket: `postgres://user@/database?host=/run/postgresql`
/// (libpq's form: a `host` that is a folder; the socket in it is `.s.PGSQL.<port>`), also
/// written with the folder percent-encoded as the host (`postgres://user@%2Frun%2Fpostgresql/database`).
///
/// Why the socket: a server on the same machine as PostgreSQL, or beside a proxy that
/// offers one (Cloud SQL's), is usually reached so, with the file's permissions as a first
/// check and no TCP port open at all.
struct PostgresLocation: Sendable {
    var host: String
    var port: Int
    var username: String
    var password: String?
    var database: String
    /// The folder holding the server's socket, when reached through it (`host` is then "").
    var socketFolder: String?
    /// `disable`, `prefer` or `require` (verifying the server's certificate). Default:
    /// `disable` on loopback and through a socket, `require` elsewhere.
    var sslMode: String
    /// The schema to use instead of `public` (tests give each store its own).
    var searchPath: String?
    /// `requirepeer=USER` (as libpq names it): the system user whose socket it must be.
    var requirePeer: (name: String, uid: uid_t)?

    /// Who may answer on the server's socket, checked before each connection: the
    /// password goes to whatever listens there (PostgreSQL asks for it in clear over a
    /// socket, with no TLS to prove the server). Found in review: with the socket in a
    /// folder anyone may write (`/tmp`, PostgreSQL's own default elsewhere than Debian), a
    /// local user could bind the socket's name while PostgreSQL was down and be sent the
    /// password at the next reconnection. So: the socket must be a socket; with
    /// `requirepeer`, owned by that user; without, in a folder others may not write.
    /// (libpq asks the kernel who the peer is after connecting, `SO_PEERCRED`; the
    /// connection here is postgres-nio's, which does not expose its descriptor, so the
    /// socket file's owner is checked just before instead. What that leaves: PostgreSQL
    /// removing its socket, and another user binding the name, between this look and the
    /// connection; in a sticky folder such as /tmp nobody else can replace PostgreSQL's
    /// own socket while it is there.)
    struct SocketCheck: Sendable {
        let path: String
        let folder: String
        let requirePeer: (name: String, uid: uid_t)?

        func verify() throws {
            var info = stat()
            // Absent (PostgreSQL down): no connection tried, so that none can reach a socket
            // someone binds in the moment between this look and the connection (review);
            // and said plainly (the connection's error says only "No such file or directory").
            guard lstat(path, &info) == 0 else {
                throw PostgresConnectionPool.Unavailable(
                    detail: "no socket at \(path): is PostgreSQL running, and is this its socket folder (SHOW unix_socket_directories) and port?")
            }
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw PostgresConnectionPool.Unavailable(detail: "\(path) is not a socket")
            }
            if let requirePeer {
                guard info.st_uid == requirePeer.uid else {
                    throw PostgresConnectionPool.Unavailable(detail: "the socket \(path) belongs to uid \(info.st_uid), not to \(requirePeer.name) (requirepeer): the password is not sent to it")
                }
                return
            }
            var folderInfo = stat()
            if stat(folder, &folderInfo) == 0, folderInfo.st_mode & S_IWOTH != 0 {
                throw PostgresConnectionPool.Unavailable(detail: """
                    the socket folder \(folder) may be written by anyone: another local user could stand in for PostgreSQL \
                    there and be sent the password. Name the server's system user in the URL (requirepeer=postgres), or use \
                    a folder only PostgreSQL writes (such as /var/run/postgresql)
                    """)
            }
        }
    }

    var socketCheck: SocketCheck? {
        guard let socketPath, let socketFolder else { return nil }
        return SocketCheck(path: socketPath, folder: socketFolder, requirePeer: requirePeer)
    }

    /// The socket's path: `.s.PGSQL.<port>` in ``socketFolder``, as PostgreSQL names it.
    var socketPath: String? { socketFolder.map { ($0.hasSuffix("/") ? String($0.dropLast()) : $0) + "/.s.PGSQL.\(port)" } }

    /// The longest socket path the system connects to (`sun_path` holds 108 bytes with the
    /// terminating zero).
    static let maximumSocketPath = 107

    static func isURL(_ text: String) -> Bool {
        let lowered = text.prefix(14).lowercased()
        return lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://")
    }

    init(url: String) throws(StoreError) {
        let shown = Self.redact(url)
        guard let parts = URLComponents(string: url), parts.scheme != nil, url.contains("://") else {
            throw .cannotOpen(path: shown, detail: "not a URL of the form postgres://user@host:port/database")
        }
        let database = String(parts.path.drop(while: { $0 == "/" }))
        // The socket's folder as the URL's `host` parameter, or percent-encoded as its host.
        var folder: String?
        var authorityHost = parts.host ?? ""
        if authorityHost.hasPrefix("/") {
            folder = authorityHost
            authorityHost = ""
        }
        let items = parts.queryItems ?? []
        if let item = items.first(where: { $0.name == "host" }) {
            guard let value = item.value, value.hasPrefix("/") else {
                throw .cannotOpen(path: shown, detail: "the host parameter must be the folder of the server's socket, an absolute path (e.g. ?host=/run/postgresql); a network host goes in the URL (postgres://user@HOST:port/database)")
            }
            guard folder == nil, authorityHost.isEmpty else {
                throw .cannotOpen(path: shown, detail: "the URL names a host and a socket folder: give one (postgres://user@host/database or postgres://user@/database?host=/folder)")
            }
            folder = value
        }
        guard folder != nil || !authorityHost.isEmpty else {
            throw .cannotOpen(path: shown, detail: "not a URL of the form postgres://user@host:port/database (or postgres://user@/database?host=/socket/folder)")
        }
        guard !database.isEmpty else {
            throw .cannotOpen(path: shown, detail: "the URL names no database (postgres://user@host:port/DATABASE)")
        }
        guard let user = parts.user, !user.isEmpty else {
            throw .cannotOpen(path: shown, detail: "the URL names no user (postgres://USER@host:port/database)")
        }
        // An IPv6 literal comes bracketed (`[::1]`): the brackets are URL syntax, not part
        // of the address (kept, DNS looked up "[::1]" and failed).
        self.host = authorityHost.hasPrefix("[") && authorityHost.hasSuffix("]") ? String(authorityHost.dropFirst().dropLast()) : authorityHost
        port = parts.port ?? 5432
        // URLComponents' user, password and path are already percent-decoded.
        username = user
        password = parts.password
        self.database = database
        socketFolder = folder
        let loopback = ["localhost", "127.0.0.1", "::1", "[::1]"].contains(authorityHost)
        var mode = loopback || folder != nil ? "disable" : "require"
        for item in items {
            switch item.name {
            case "host":
                continue  // read above
            case "sslmode":
                guard let value = item.value, ["disable", "prefer", "require"].contains(value) else {
                    throw .cannotOpen(path: shown, detail: "sslmode must be disable, prefer or require")
                }
                mode = value
            case "requirepeer":
                guard let value = item.value, !value.isEmpty else {
                    throw .cannotOpen(path: shown, detail: "requirepeer must name the system user PostgreSQL runs as (requirepeer=postgres)")
                }
                guard let entry = getpwnam(value) else {
                    throw .cannotOpen(path: shown, detail: "requirepeer names '\(value)', which is no user on this system")
                }
                requirePeer = (value, entry.pointee.pw_uid)
            case "search_path":
                guard let value = item.value, !value.isEmpty, value.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw .cannotOpen(path: shown, detail: "search_path must be one schema name (letters, digits, _)")
                }
                searchPath = value
            default:
                throw .cannotOpen(path: shown, detail: "unknown URL parameter '\(item.name)' (known: host, sslmode, requirepeer, search_path)")
            }
        }
        if folder == nil, requirePeer != nil {
            throw .cannotOpen(path: shown, detail: "requirepeer applies to a unix socket (postgres://user@/database?host=/folder&requirepeer=postgres); over the network the server is proven by TLS (sslmode=require)")
        }
        if folder != nil {
            // PostgreSQL speaks no TLS on its socket: a URL asking for it would be refused
            // by every connection, with a less helpful message.
            guard mode != "require" else {
                throw .cannotOpen(path: shown, detail: "sslmode=require cannot be met through a unix socket (PostgreSQL uses no TLS there): drop it, or reach the server over the network")
            }
            mode = "disable"
        }
        sslMode = mode
        if let path = socketPath, path.utf8.count > Self.maximumSocketPath {
            throw .cannotOpen(path: shown, detail: "the socket path \(path) is longer than the \(Self.maximumSocketPath) bytes the system accepts: use a shorter folder (a symbolic link to it)")
        }
    }

    /// The URL without its password, for messages and logs.
    var redacted: String {
        var query: [String] = []
        var text: String
        if let socketFolder {
            text = "postgres://\(username)@\(port == 5432 ? "" : ":\(port)")/\(database)"
            query.append("host=\(socketFolder)")
        } else {
            text = "postgres://\(username)@\(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host):\(port)/\(database)"
        }
        if let requirePeer { query.append("requirepeer=\(requirePeer.name)") }
        if let searchPath { query.append("search_path=\(searchPath)") }
        if !query.isEmpty { text += "?" + query.joined(separator: "&") }
        return text
    }

    /// `url` with any password replaced, even when it does not parse.
    static func redact(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://"), scheme.upperBound < at else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }

    /// Connections wait at most `lockTimeout` seconds for a lock (a row, or a meter's
    /// advisory lock) and a statement runs at most 30 s (or the lock timeout if longer):
    /// a stalled database answers with an error, and no pool thread waits for ever.
    /// A lock wait of `seconds` as `lock_timeout` takes it (milliseconds, at least 1: 0
    /// would mean no limit).
    static func lockMillis(_ seconds: Double) -> Int { max(1, Int(seconds * 1000)) }

    func connectionConfiguration(lockTimeout: Double) throws(StoreError) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case "disable":
            tls = .disable
        default:
            do {
                let context = try NIOSSLContext(configuration: .makeClientConfiguration())
                tls = sslMode == "require" ? .require(context) : .prefer(context)
            } catch {
                throw .cannotOpen(path: redacted, detail: "cannot set up TLS: \(error)")
            }
        }
        var configuration =
            if let socketPath {
                PostgresConnection.Configuration(unixSocketPath: socketPath, username: username, password: password, database: database)
            } else {
                PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
            }
        let lockMillis = Self.lockMillis(lockTimeout)
        configuration.options.additionalStartupParameters = [
            ("application_name", "paywall"),
            ("lock_timeout", "\(lockMillis)ms"),
            ("statement_timeout", "\(max(30_000, lockMillis))ms"),
            // A server that stops mid-transaction (frozen, cut off) holds its locks, and
            // every other server's checks of those readers wait on them: PostgreSQL ends
            // such a session after 15 s idle in a transaction (ours send their statements
            // back to back; `db copy`, which reads the source between them, lifts it), and
            // probes a silent client's socket within about a minute.
            ("idle_in_transaction_session_timeout", "15000ms"),
            ("tcp_keepalives_idle", "30"), ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "3"),
        ]
        if let searchPath {
            configuration.options.additionalStartupParameters.append(("search_path", searchPath))
        }
        return configuration
    }
}
