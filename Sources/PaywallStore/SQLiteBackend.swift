import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import PaywallCore

/// The embedded store: one SQLite file in WAL mode, one writer and concurrent readers.
///
/// Exactness: SQLite runs one write transaction at a time (`BEGIN IMMEDIATE` takes the
/// file's write lock), so every check-then-write in the store (the meter's last unit, one
/// trial per person, refresh rotation, gift limits) sees every earlier commit and no
/// concurrent one.
final class SQLiteBackend: StoreBackend {
    let location: String
    let pool: DatabasePool
    let hotReaders: HotReaders
    let busyTimeout: Double
    let facts = FactsCache()
    /// Keeps ``facts`` exact against every writer of the file (``SQLiteFactsChanges``).
    let factsChanges: SQLiteFactsChanges
    /// The metered readers' counted articles, known to the writer (nil when read-only).
    let meterState: SQLiteMeterState?

    /// The scheme of a location that looks like another database's URL (`mysql://…`):
    /// taken for a file path it would be created as a folder named `mysql:`.
    static func foreignScheme(_ location: String) -> String? {
        guard let range = location.range(of: "://"), !location.hasPrefix("/") else { return nil }
        let scheme = location[..<range.lowerBound]
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." }) else { return nil }
        return String(scheme)
    }

    /// Write-ahead log pages that start an automatic checkpoint (see `prepareDatabase`).
    static let checkpointPages = 10_000

    init(path: String, configuration: StoreConfiguration) throws(StoreError) {
        location = path
        busyTimeout = configuration.busyTimeout
        factsChanges = SQLiteFactsChanges(facts: facts)
        meterState = configuration.readOnly || configuration.meterStateCapacity <= 0 ? nil : SQLiteMeterState(capacity: configuration.meterStateCapacity)
        if let scheme = Self.foreignScheme(path) {
            // Shown without what may be a password (`mysql://user:secret@host/db`).
            throw .cannotOpen(path: PostgresLocation.redact(path), detail: "'\(scheme)://' is not a database paywall uses: give a SQLite file's path or a postgres:// URL")
        }
        if FileManager.default.isFolder(atPath: path) { throw .cannotOpen(path: path, detail: "it is a folder, not a database file") }
        if !FileManager.default.fileExists(atPath: path), configuration.readOnly || !configuration.createIfMissing {
            throw .noSuchFile(path: path)
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
                // The write-ahead log is copied into the database once it holds this many
                // pages (SQLite's default: 1,000). Each copy writes the latest version of
                // every page in it, so a longer log copies the hot pages (the reads table's
                // last leaf, its index's leaves) fewer times over: metered reads through the
                // store +9% with 10,000 (BENCHMARKS.md, "ES256 scalar arithmetic in Swift"),
                // for a log file of about 40 MB that SQLite reuses from its start.
                try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.checkpointPages)")
                // And the log file cut back to 64 MiB after a checkpoint that emptied it: one
                // large transaction (a migration, a mass deletion) would otherwise leave it at
                // its largest until every connection closed (found in review).
                try db.execute(sql: "PRAGMA journal_size_limit = \(64 << 20)")
            }
        }
        if !configuration.readOnly { Self.createPrivately(path) }
        do {
            if configuration.readOnly {
                pool = try DatabasePool(path: path, configuration: config)
                try pool.read { db in try Self.checkSchema(db, path: path, requireCurrent: true) }
            } else {
                pool = try Self.retryingOpen {
                    let pool = try DatabasePool(path: path, configuration: config)
                    try pool.writeWithoutTransaction { db in
                        // GRDB sets NORMAL when it enables WAL; apply our choice last.
                        try db.execute(sql: "PRAGMA synchronous = \(durable ? "FULL" : "NORMAL")")
                        try Self.checkSchema(db, path: path, requireCurrent: false)
                    }
                    if configuration.migrate { try Migrations.migrator.migrate(pool) }
                    return pool
                }
            }
            hotReaders = try HotReaders(path: path, count: configuration.maximumReaderCount, busyTimeout: configuration.busyTimeout, facts: facts)
            if configuration.readOnly {
                try pool.read { db in try factsChanges.start(GRDBConnection(db: db)) }
            } else {
                // On the writer: a pool reader opened here would outlive the writer at close
                // (GRDB closes the writer first), and a read-only last connection leaves the
                // WAL uncheckpointed.
                try pool.writeWithoutTransaction { db in
                    try factsChanges.start(GRDBConnection(db: db))
                    if let meterState { db.add(transactionObserver: meterState, extent: .databaseLifetime) }
                }
            }
        } catch {
            throw StoreError.from(error, path: path, busyTimeout: configuration.busyTimeout)
        }
    }

    /// Opens, sets up and migrates a writable file, again when another process did so at
    /// the same moment: GRDB reads which migrations are applied before it takes the write
    /// lock, and switching a new file to WAL answers SQLITE_BUSY at once rather than
    /// waiting, so of two servers (or `db migrate`s) starting on a new file one met "table
    /// accounts already exists" or "locked" and exited (4 rounds in 10, measured in
    /// review). What the other committed is read again on the retry; a migration that fails
    /// on its own fails every time, and its error is the one thrown.
    static func retryingOpen(_ open: () throws -> DatabasePool) throws -> DatabasePool {
        var attempt = 0
        while true {
            do {
                return try open()
            } catch let error as StoreError {
                throw error  // our own verdict (a newer schema, not SQLite): the same next time
            } catch {
                attempt += 1
                guard attempt < 6 else { throw error }
                usleep(UInt32(50_000 * attempt))
            }
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

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try pool.read { db in try body(GRDBConnection(db: db)) }
    }

    /// Also reads, before committing, the facts changes the transaction made (and any
    /// other process's since the last read): its own change has left the cache when the
    /// write returns.
    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        var changes: (changes: [(id: Int64, payload: String)], readAt: ContinuousClock.Instant)?
        let result = try pool.write { db in
            let connection = GRDBConnection(db: db)
            let result = try body(connection)
            changes = try factsChanges.pending(connection)
            return result
        }
        if let changes { factsChanges.apply(changes.changes, readAt: changes.readAt) }  // committed
        return result
    }

    /// Writes that take readers' meter locks on PostgreSQL (reads recorded or moved, an
    /// account erased); batches of metered reads run through ``meteredReadBatch(subjects:_:)``.
    func meteredWrite<T>(subjects: [String], _ body: (any SQLConnection) throws -> T) throws -> T {
        try write(body)  // one writer at a time: exact already
    }

    /// A batch of metered reads' transaction, with the writer's counted articles (checked
    /// first, forgotten if the transaction fails). ``write(_:)`` without its read of the
    /// facts change log: the batch writes only `reads`, which no trigger logs, so it has
    /// no change of its own to apply; other processes' changes are read before checks (at
    /// most every millisecond, ``catchUpOnFactChanges()``). Measured: the writer read the
    /// log after each of its 2,000 batches a second, 1.3% of a metered check's CPU.
    func meteredReadBatch<T>(subjects: [String], _ body: (any SQLConnection, SQLiteMeterState?) throws -> T) throws -> T {
        do {
            return try pool.write { db in
                let connection = GRDBConnection(db: db)
                try meterState?.beginBatch(connection)
                return try body(connection, meterState)
            }
        } catch {
            meterState?.batchFailed()
            throw error
        }
    }

    func readHot<T>(_ body: (any HotQueries) throws -> T) throws -> T {
        try hotReaders.read(body)
    }

    func snapshot<T>(_ body: () throws -> T) throws -> T {
        try hotReaders.snapshot(body)
    }

    var inSnapshot: Bool { hotReaders.inSnapshot }

    func catchUpOnFactChanges() -> Bool {
        let begun: Bool
        switch hotReaders.factChangesInSnapshot() {
        case .considered: return true
        case .failed: return false
        case let .due(snapshotBegun): begun = snapshotBegun
        }
        guard factsChanges.isDue() else { return true }
        do {
            // Inside a snapshot (not begun: this begins it), on its reader: never a second
            // reader while holding one.
            let read = try hotReaders.read { hot in try factsChanges.pending(hot.connection) }
            // A snapshot begun earlier read the log as of then, not now: what it found is
            // applied, but other checks are not spared their own read.
            factsChanges.apply(read.changes, readAt: begun ? nil : read.readAt)
            return true
        } catch {
            hotReaders.factChangesFailedInSnapshot()
            return false
        }
    }

    func snapshotFactsGeneration() -> UInt64? { hotReaders.snapshotFactsGeneration() }

    func storeError(_ error: any Error) -> StoreError {
        StoreError.from(error, path: location, busyTimeout: busyTimeout)
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`, and the schema version.
    func health() throws -> StoreHealth {
        try pool.read { db in
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

    /// Makes `path` an empty file only its owner may read or write, if there is none: SQLite
    /// takes an empty file for an empty database, and gives its -wal and -shm files the same
    /// mode. The database holds password hashes, sessions and mail waiting to be sent; made
    /// by SQLite itself it was readable by everyone (0644 under the usual umask).
    /// Returns whether it made the file (false: it was there, and is left as it is).
    @discardableResult
    static func createPrivately(_ path: String) -> Bool {
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return false }
        Glibc.close(descriptor)
        return true
    }

    /// SQLite's online backup to a new file (only its owner may read it, as the database).
    /// A file that appeared at `destination` since the caller looked (or a link planted
    /// there) is refused, never written through.
    ///
    /// Written beside it first (`destination.partial`), synced, and only then given its
    /// name, with the folder synced: a backup interrupted (killed, the power lost) is never
    /// a file under the backup's name. Written in place, a kill left an empty database
    /// there once its journal rolled back, and the next run refused the name; and a
    /// success reported before the folder was synced could vanish with the power (found in
    /// review).
    func backup(to destination: String) throws {
        let partial = destination + ".partial"
        guard Self.createPrivately(partial) else {
            let reason = errno
            if reason == EEXIST {
                throw StoreError.cannotOpen(path: destination, detail: "\(partial) is there: an interrupted backup's, or one running now; remove it (and \(partial)-journal) once none runs, and back up again")
            }
            throw StoreError.cannotOpen(path: destination, detail: String(cString: strerror(reason)))
        }
        do {
            let target = try DatabaseQueue(path: partial)
            try pool.backup(to: target)
            try target.close()
            try Self.sync(path: partial, flags: O_RDONLY)
            try Self.name(partial, as: destination)
        } catch {
            unlink(partial)
            unlink(partial + "-journal")
            throw error
        }
        unlink(partial)
        let folder = (destination as NSString).deletingLastPathComponent
        do {
            try Self.sync(path: folder.isEmpty ? "." : folder, flags: O_RDONLY | O_DIRECTORY)
        } catch {
            // The backup is whole under its name; only its surviving a power cut is unsure.
            throw StoreError.cannotOpen(
                path: destination,
                detail: "the backup is complete, but its folder could not be synced (\(error)): it may not survive a power cut; copy it somewhere that syncs")
        }
    }

    /// Gives the synced `partial` the backup's name: a link, not a rename, so that it never
    /// replaces a file that appeared at the name since. A file system without hard links
    /// (vfat and exFAT, many SMB shares and FUSE mounts) refuses the link; there the name
    /// is checked free and the file renamed to it, which leaves a moment for a file to
    /// appear in between (found in review: every backup to such a volume failed).
    static func name(_ partial: String, as destination: String, link: (String, String) -> Int32 = { Glibc.link($0, $1) }) throws {
        guard link(partial, destination) != 0 else { return }
        let reason = errno
        if reason == EEXIST { throw StoreError.destinationExists(path: destination) }
        guard [EPERM, EOPNOTSUPP, ENOSYS, EMLINK].contains(reason) else {
            throw StoreError.cannotOpen(path: destination, detail: String(cString: strerror(reason)))
        }
        var info = stat()
        if lstat(destination, &info) == 0 { throw StoreError.destinationExists(path: destination) }
        guard rename(partial, destination) == 0 else {
            throw StoreError.cannotOpen(path: destination, detail: String(cString: strerror(errno)))
        }
    }

    /// fsync of the file or folder at `path`.
    static func sync(path: String, flags: Int32) throws {
        let descriptor = open(path, flags | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError.cannotOpen(path: path, detail: String(cString: strerror(errno))) }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw StoreError.cannotOpen(path: path, detail: "fsync: \(String(cString: strerror(errno)))") }
    }

    func close() throws {
        try hotReaders.close()
        try pool.close()
    }

    /// Whether `error` is SQLite's.
    static func owns(_ error: any Error) -> Bool { error is DatabaseError }

    /// What `error` broke, when it is SQLite's constraint violation.
    static func constraint(of error: any Error) -> SQLConstraint? {
        guard let error = error as? DatabaseError, error.resultCode == .SQLITE_CONSTRAINT else { return nil }
        switch error.extendedResultCode {
        case .SQLITE_CONSTRAINT_UNIQUE, .SQLITE_CONSTRAINT_PRIMARYKEY: return .unique
        case .SQLITE_CONSTRAINT_FOREIGNKEY: return .foreignKey
        case .SQLITE_CONSTRAINT_CHECK: return .check
        case .SQLITE_CONSTRAINT_NOTNULL: return .notNull
        default: return .other
        }
    }
}

/// A GRDB connection inside one of its transactions. Statements are cached per connection
/// (prepared once).
struct GRDBConnection: SQLConnection {
    let db: Database

    var dialect: SQLDialect { .sqlite }

    func lockMeters(_ subjects: [String]) throws {}

    @discardableResult
    func execute(_ sql: String, _ arguments: SQLArguments) throws -> Int {
        try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        return db.changesCount
    }

    func fetchAll(_ sql: String, _ arguments: SQLArguments) throws -> [SQLRow] {
        let statement = try db.cachedStatement(sql: sql)
        let columns = SQLColumns(statement.columnNames)
        let cursor = try Row.fetchCursor(statement, arguments: Self.arguments(arguments))
        var rows: [SQLRow] = []
        while let row = try cursor.next() {
            rows.append(SQLRow(columns: columns, values: row.databaseValues.map(Self.value)))
        }
        return rows
    }

    static func arguments(_ arguments: SQLArguments) -> StatementArguments {
        // The values go in as existentials, not as `[DatabaseValue]`: GRDB's initializer for a
        // sequence of one concrete type maps it with a key path, which is built at run time on
        // every call from outside its module (4% of a metered check's CPU in a profile).
        StatementArguments(arguments.values.map { value -> (any DatabaseValueConvertible)? in
            switch value {
            case .null: return nil
            case let .integer(number): return number
            case let .real(number): return number
            case let .text(text): return text
            case let .blob(bytes): return bytes
            }
        })
    }

    static func value(_ value: DatabaseValue) -> SQLValue {
        switch value.storage {
        case .null: return .null
        case let .int64(number): return .integer(number)
        case let .double(number): return .real(number)
        case let .string(text): return .text(text)
        case let .blob(bytes): return .blob(bytes)
        }
    }
}
