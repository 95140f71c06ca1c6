import Foundation
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

    /// Checks the database (SQLite: `PRAGMA integrity_check` and `foreign_key_check`;
    /// PostgreSQL checks as it writes) and reads the schema version.
    public func health() throws(StoreError) -> StoreHealth {
        do {
            return try backend.health()
        } catch {
            throw backend.storeError(error)
        }
    }

    /// The number of rows in every table of the schema (migration records and SQLite's
    /// facts change log aside: bookkeeping, not data), by table: what `paywall db copy`
    /// compares, and what proves a refused operation wrote nothing.
    public func rowCounts() throws(StoreError) -> [String: Int] {
        try read { db in
            let tables = db.dialect == .sqlite
                ? try db.fetchValues(String.self, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN ('grdb_migrations', 'facts_changes')")
                : try db.fetchValues(String.self, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename != 'paywall_migrations'")
            var counts: [String: Int] = [:]
            for table in tables {
                // Names come from the catalog, not from input; quoted as identifiers.
                counts[table] = try db.fetchValue(Int.self, "SELECT COUNT(*) FROM \(Self.quotedIdentifier(table))") ?? 0
            }
            return counts
        }
    }

    /// Opens and ends a write transaction (writes nothing): fails when the database is
    /// read-only, locked past the busy timeout, or its disk is gone.
    public func checkWritable() throws(StoreError) {
        try write { db in
            // PostgreSQL opens a transaction lazily: asking for its id makes it a writer, so
            // a read-only server (a standby, a full disk's read-only mode) fails here.
            if db.dialect == .postgres { try db.execute("SELECT pg_current_xact_id()") }
        }
    }

    /// Migrations applied to the file, in order.
    public func appliedMigrations() throws(StoreError) -> [String] {
        try health().appliedMigrations
    }

    /// Copies the database, consistently and while it is in use, to a new file at
    /// `destination` (SQLite's online backup). Refuses to overwrite an existing file. A
    /// PostgreSQL store is backed up with PostgreSQL's own tools (`pg_dump`).
    public func backup(to destination: String) throws(StoreError) {
        guard let sqlite = backend as? SQLiteBackend else {
            throw .cannotOpen(path: location, detail: "backup copies a SQLite file; back up PostgreSQL with pg_dump")
        }
        guard !destination.isEmpty else { throw .cannotOpen(path: destination, detail: "no destination file named") }
        if FileManager.default.fileExists(atPath: destination) { throw .destinationExists(path: destination) }
        let parent = (destination as NSString).deletingLastPathComponent
        if !parent.isEmpty, !FileManager.default.isFolder(atPath: parent) {
            throw .cannotOpen(path: destination, detail: "folder \(parent) does not exist")
        }
        do {
            // A failure removes its partial file and never names the destination: a file
            // there is never ours to remove.
            try sqlite.backup(to: destination)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.from(error, path: destination, busyTimeout: sqlite.busyTimeout)
        }
    }

    /// Closes the database; further calls fail.
    public func close() throws(StoreError) {
        // Metered reads already queued are committed (and answered) first.
        groupCommit.close()
        do {
            try backend.close()
        } catch { throw backend.storeError(error) }
    }
}
