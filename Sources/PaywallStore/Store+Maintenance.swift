import Foundation
import GRDB
import PaywallCore

/// The state of a database file's schema and contents.
public struct StoreHealth: Sendable, Equatable {
    /// `["ok"]` when SQLite finds nothing wrong, otherwise its findings.
    public var integrity: [String]
    /// Rows that break a foreign key (table and row id).
    public var foreignKeyViolations: [String]
    /// Migrations applied, in order.
    public var appliedMigrations: [String]
    /// Migrations this version of paywall knows but the file lacks.
    public var pendingMigrations: [String]

    /// Whether nothing is wrong.
    public var isHealthy: Bool { integrity == ["ok"] && foreignKeyViolations.isEmpty && pendingMigrations.isEmpty }
}

extension Store {
    /// Every migration this version knows, in order.
    public static var knownMigrations: [String] { Migrations.identifiers }

    /// Runs `PRAGMA integrity_check` and `foreign_key_check` and reads the schema version.
    public func health() throws(StoreError) -> StoreHealth {
        try read { db in
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            let violations = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").map { row -> String in
                let table: String = row[0]
                let rowid: Int64? = row[1]
                return "\(table) row \(rowid.map(String.init) ?? "?")"
            }
            let applied = try Migrations.migrator.appliedIdentifiers(db)
            let ordered = Migrations.identifiers.filter { applied.contains($0) }
            let pending = Migrations.identifiers.filter { !applied.contains($0) }
            return StoreHealth(integrity: integrity, foreignKeyViolations: violations, appliedMigrations: ordered, pendingMigrations: pending)
        }
    }

    /// Opens and ends a write transaction (writes nothing): fails when the database is
    /// read-only, locked past the busy timeout, or its disk is gone.
    public func checkWritable() throws(StoreError) {
        try write { _ in }
    }

    /// Migrations applied to the file, in order.
    public func appliedMigrations() throws(StoreError) -> [String] {
        try health().appliedMigrations
    }

    /// Copies the database, consistently and while it is in use, to a new file at
    /// `destination` (SQLite's online backup). Refuses to overwrite an existing file.
    public func backup(to destination: String) throws(StoreError) {
        if FileManager.default.fileExists(atPath: destination) { throw .destinationExists(path: destination) }
        do {
            let target = try DatabaseQueue(path: destination)
            try pool.backup(to: target)
            try target.close()
        } catch {
            try? FileManager.default.removeItem(atPath: destination)
            throw StoreError.from(error, path: destination, busyTimeout: busyTimeout)
        }
    }

    /// Closes the database; further calls fail.
    public func close() throws(StoreError) {
        // Metered reads already queued are committed (and answered) first.
        groupCommit.close()
        do {
            try hotReaders.close()
            try pool.close()
        } catch { throw StoreError.from(error, path: path, busyTimeout: busyTimeout) }
    }
}
