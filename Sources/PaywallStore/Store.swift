import Foundation
import GRDB
import PaywallCore

/// The account store: one SQLite file in WAL mode, one writer and concurrent readers,
/// safe to use from many tasks at once.
///
/// Every operation is a domain operation (accounts, catalog, trials, memberships, meters,
/// sessions, audit); SQL stays inside this module and only ever uses bound parameters.
/// Every administrative change appends to the audit log in the same transaction.
public final class Store: Sendable {
    /// The database file.
    public let path: String
    /// The source of "now".
    public let clock: any PaywallClock
    let pool: DatabasePool
    let hotReaders: HotReaders
    /// Concurrent metered reads committed together.
    let groupCommit = GroupCommit()
    let busyTimeout: Double
    let readOnly: Bool
    let sessionFamilyLifetime: TimeInterval
    let refreshGraceWindow: TimeInterval

    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    public init(path: String, configuration: StoreConfiguration = StoreConfiguration()) throws(StoreError) {
        self.path = path
        self.clock = configuration.clock
        self.busyTimeout = configuration.busyTimeout
        self.readOnly = configuration.readOnly
        self.sessionFamilyLifetime = max(0, configuration.sessionFamilyLifetime)
        self.refreshGraceWindow = max(0, configuration.refreshGraceWindow)

        if configuration.readOnly, !FileManager.default.fileExists(atPath: path) {
            throw .cannotOpen(path: path, detail: "no such file")
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) {
            throw .cannotOpen(path: path, detail: "folder \(parent) does not exist")
        }

        var config = Configuration()
        config.busyMode = .timeout(configuration.busyTimeout)
        config.foreignKeysEnabled = true
        config.readonly = configuration.readOnly
        config.maximumReaderCount = configuration.maximumReaderCount
        config.label = "paywall"
        let durable = configuration.durableCommits
        config.prepareDatabase { db in
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA synchronous = \(durable ? "FULL" : "NORMAL")")
            }
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            if configuration.readOnly {
                try pool.read { db in try Self.checkSchema(db, path: path, requireCurrent: true) }
            } else {
                try pool.writeWithoutTransaction { db in
                    // GRDB sets NORMAL when it enables WAL; apply our choice last.
                    try db.execute(sql: "PRAGMA synchronous = \(durable ? "FULL" : "NORMAL")")
                    try Self.checkSchema(db, path: path, requireCurrent: false)
                }
                try Migrations.migrator.migrate(pool)
            }
            hotReaders = try HotReaders(path: path, count: configuration.maximumReaderCount, busyTimeout: configuration.busyTimeout)
        } catch {
            throw StoreError.from(error, path: path, busyTimeout: configuration.busyTimeout)
        }
    }

    /// Refuses a file that a newer version of paywall migrated, or (read-only) one that
    /// is behind.
    static func checkSchema(_ db: Database, path: String, requireCurrent: Bool) throws {
        let applied = try Migrations.migrator.appliedIdentifiers(db)
        let known = Set(Migrations.identifiers)
        let unknown = applied.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty { throw StoreError.schemaTooNew(path: path, unknownMigrations: unknown) }
        if requireCurrent {
            let pending = Migrations.identifiers.filter { !applied.contains($0) }
            if !pending.isEmpty { throw StoreError.schemaOutdated(path: path, pendingMigrations: pending) }
        }
    }

    // MARK: - Access helpers

    /// Runs `body` in a read transaction, mapping errors.
    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try pool.read(body)
        } catch {
            throw StoreError.from(error, path: path, busyTimeout: busyTimeout)
        }
    }

    /// Runs a hot-path query (one statement, atomic on its own) on a hot reader. Use
    /// ``read(_:)`` for everything else.
    func readHot<T>(_ body: (HotReader, Database) throws -> T) throws(StoreError) -> T {
        do {
            return try hotReaders.read(body)
        } catch {
            throw StoreError.from(error, path: path, busyTimeout: busyTimeout)
        }
    }

    /// Runs `body` so that every hot-path read it makes (on this thread) sees one snapshot
    /// of the database, on one reader. For the facts of a decision.
    public func snapshot<T>(_ body: () throws -> T) throws -> T {
        do {
            return try hotReaders.snapshot(body)
        } catch let error as DatabaseError {
            throw StoreError.from(error, path: path, busyTimeout: busyTimeout)
        }  // the body's own errors (invalid input, not found) pass through as they are
    }

    /// Runs `body` in an immediate write transaction, mapping errors. Nothing is written
    /// when `body` throws.
    func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        if readOnly { throw StoreError.readOnly(path: path) }
        do {
            return try pool.write(body)
        } catch {
            throw StoreError.from(error, path: path, busyTimeout: busyTimeout)
        }
    }

    /// Appends an audit entry inside the current write transaction.
    func audit(_ db: Database, actor: AuditActor, action: String, target: String, details: [String: String] = [:]) throws {
        try db.cachedStatement(sql: "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [clock.now().millis, actor.rawValue, action, target, Self.json(details)])
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
