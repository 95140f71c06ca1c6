import Foundation
import PaywallCore

/// The account store: one SQLite file (the embedded default) or one PostgreSQL database
/// shared by several servers, safe to use from many tasks at once.
///
/// Every operation is a domain operation (accounts, catalog, trials, memberships, meters,
/// sessions, audit); SQL stays inside this module, is written once for both backends
/// (``SQLConnection``) and only ever uses bound parameters. Every administrative change
/// appends to the audit log in the same transaction.
public final class Store: Sendable {
    /// Where the data is: the database file, or the PostgreSQL URL without its password.
    public let location: String
    /// The source of "now".
    public let clock: any PaywallClock
    let backend: any StoreBackend
    /// Concurrent metered reads committed together.
    let groupCommit: GroupCommit
    let readOnly: Bool
    let sessionFamilyLifetime: TimeInterval
    let refreshGraceWindow: TimeInterval

    /// Opens (creating if needed) the store at `location` and runs pending migrations: a
    /// `postgres://` (or `postgresql://`) URL selects PostgreSQL, anything else is the path
    /// of a SQLite file.
    public init(location: String, configuration: StoreConfiguration = StoreConfiguration()) throws(StoreError) {
        self.clock = configuration.clock
        self.readOnly = configuration.readOnly
        self.sessionFamilyLifetime = max(0, configuration.sessionFamilyLifetime)
        self.refreshGraceWindow = max(0, configuration.refreshGraceWindow)
        if Self.isPostgres(location) {
            backend = try PostgresBackend(url: location, configuration: configuration)
        } else {
            backend = try SQLiteBackend(path: location, configuration: configuration)
        }
        self.location = backend.location
        // SQLite has one writer: a second committer would only wait for the first's lock.
        groupCommit = GroupCommit(committers: backend is PostgresBackend ? configuration.meterCommitters : 1)
    }

    /// Whether `location` names a PostgreSQL database (a `postgres://` or `postgresql://`
    /// URL) rather than a SQLite file.
    public static func isPostgres(_ location: String) -> Bool { PostgresLocation.isURL(location) }

    /// `location` as messages show it: a PostgreSQL URL without its password.
    public static func redacted(_ location: String) -> String {
        PostgresLocation.isURL(location) ? PostgresLocation.redact(location) : location
    }

    /// Nil when `location` is a SQLite path or a PostgreSQL URL paywall can use; otherwise
    /// what is wrong with the URL (never its password). Read before anything connects, so
    /// that a malformed `--db` is a usage error.
    public static func urlProblem(_ location: String) -> String? {
        guard PostgresLocation.isURL(location) else { return nil }
        do {
            _ = try PostgresLocation(url: location)
            return nil
        } catch {
            if case let .cannotOpen(_, detail) = error { return detail }
            return error.description
        }
    }

    /// Opens the SQLite file at `path` (see ``init(location:configuration:)``).
    public convenience init(path: String, configuration: StoreConfiguration = StoreConfiguration()) throws(StoreError) {
        try self.init(location: path, configuration: configuration)
    }

    /// The value of a cached fact (``FactsCache``), or `load`'s.
    func cachedFact<T: Sendable>(group: String, key: String, _ load: () throws(StoreError) -> T) throws(StoreError) -> T {
        guard backend.catchUpOnFactChanges() else { return try load() }
        return try backend.facts.value(group: group, key: key, since: backend.snapshotFactsGeneration, load)
    }

    /// Whether this server serves facts from its cache now (PostgreSQL: while listening).
    var cachesFacts: Bool { backend.facts.isEnabled }

    // MARK: - Access helpers

    /// Runs `body` in a read transaction, mapping errors. Inside ``snapshot(_:)`` on this
    /// thread, in the snapshot's transaction: what the caller reads there, hot or not, is
    /// one state of the database (a reader's data export reads a dozen tables), and no
    /// second connection is taken while one is held.
    func read<T>(_ body: (any SQLConnection) throws -> T) throws(StoreError) -> T {
        do {
            if backend.inSnapshot { return try backend.readHot { hot in try body(hot.connection) } }
            return try backend.read(body)
        } catch {
            throw backend.storeError(error)
        }
    }

    /// Runs a hot-path query (one statement, atomic on its own). Use ``read(_:)`` for
    /// everything else.
    func readHot<T>(_ body: (any HotQueries) throws -> T) throws(StoreError) -> T {
        do {
            return try backend.readHot(body)
        } catch {
            throw backend.storeError(error)
        }
    }

    /// ``readHot(_:)`` for a query of its own on the hot connection.
    func readHotSQL<T>(_ body: (any SQLConnection) throws -> T) throws(StoreError) -> T {
        try readHot { hot in try body(hot.connection) }
    }

    /// Runs `body` so that every read it makes (on this thread) sees one snapshot of the
    /// database, on one connection: the facts of a decision, a reader's data export.
    /// Writes inside it are their own transactions (and not seen by its reads).
    public func snapshot<T>(_ body: () throws -> T) throws -> T {
        do {
            return try backend.snapshot(body)
        } catch let error as StoreError {
            throw error
        } catch let error where Self.isBackendError(error) {
            throw backend.storeError(error)
        }  // the body's own errors (invalid input, not found) pass through as they are
    }

    /// Runs `body` in a write transaction, mapping errors. Nothing is written when `body`
    /// throws. On PostgreSQL `body` may run again after a serialization failure: it must
    /// only touch the database.
    @discardableResult
    func write<T>(_ body: (any SQLConnection) throws -> T) throws(StoreError) -> T {
        if readOnly { throw StoreError.readOnly(path: location) }
        do {
            return try backend.write(body)
        } catch {
            throw backend.storeError(error)
        }
    }

    /// Whether `error` is the database's (rather than the caller's own).
    static func isBackendError(_ error: any Error) -> Bool {
        SQLiteBackend.owns(error) || PostgresBackend.owns(error)
    }

    /// A write that moves or counts meter subjects' reads: their meter locks are taken
    /// before anything is read. On PostgreSQL it runs READ COMMITTED (a SERIALIZABLE
    /// snapshot, fixed at its first statement, could miss a read committed while it waited
    /// for the lock, and serializable checks ignore the metered writes' transactions); on
    /// SQLite it is an ordinary write.
    @discardableResult
    func writeLockingMeters<T>(_ subjects: [String], _ body: (any SQLConnection) throws -> T) throws(StoreError) -> T {
        if readOnly { throw StoreError.readOnly(path: location) }
        do {
            return try backend.meteredWrite(subjects: subjects, body)
        } catch {
            throw backend.storeError(error)
        }
    }

    /// Appends an audit entry inside the current write transaction.
    func audit(_ db: any SQLConnection, actor: AuditActor, action: String, target: String, details: [String: String] = [:]) throws {
        try db.execute("INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
            [clock.now().millis, actor.rawValue, action, target, Self.json(details)])
    }

    static func json(_ details: [String: String]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: details, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

extension Date {
    /// Milliseconds since 1970, the stored form of every instant. Clamped, never trapping:
    /// a window of 10^10 weeks before now is far before any stored time, and saying so
    /// is enough (`Int64(Double)` traps outside its range and on NaN).
    var millis: Int64 {
        let value = (timeIntervalSince1970 * 1000).rounded()
        if value.isNaN { return 0 }
        if value >= 9.2e18 { return .max }
        if value <= -9.2e18 { return .min }
        return Int64(value)
    }

    init(millis: Int64) { self.init(timeIntervalSince1970: Double(millis) / 1000) }
}
