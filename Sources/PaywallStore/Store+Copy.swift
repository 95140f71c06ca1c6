import Foundation
import PaywallCore
import PaywallCrypto

/// Why ``Store/copy(to:)`` wrote nothing to its target.
public enum CopyRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The source and the target are one database.
    case sameDatabase(location: String)
    /// A copy goes from a SQLite file into PostgreSQL only (the move the command exists
    /// for); `source` and `target` name the kinds given.
    case unsupportedDirection(source: String, target: String)
    /// The two databases are at different schema versions: migrations applied to one only.
    case schemaVersionsDiffer(sourceOnly: [String], targetOnly: [String])
    /// The tables or columns differ although the versions agree, or the tables cannot be
    /// put in an order their foreign keys allow.
    case schemasDiffer(detail: String)
    /// The target already holds rows in these tables (in copy order).
    case targetNotEmpty(location: String, tables: [String])
    /// After copying, the target did not match the source: the copy was rolled back.
    case verificationFailed(detail: String)

    public var description: String {
        switch self {
        case let .sameDatabase(location):
            return "the source and the target are the same database (\(location))"
        case let .unsupportedDirection(source, target):
            return "a copy goes from a SQLite file into a PostgreSQL database, not from \(source) into \(target)"
        case let .schemaVersionsDiffer(sourceOnly, targetOnly):
            var parts: [String] = []
            if !sourceOnly.isEmpty { parts.append("only the source has \(sourceOnly.joined(separator: ", "))") }
            if !targetOnly.isEmpty { parts.append("only the target has \(targetOnly.joined(separator: ", "))") }
            return "the two schemas are at different versions (\(parts.joined(separator: "; "))); migrate the older one first"
        case let .schemasDiffer(detail):
            return "the two schemas differ: \(detail)"
        case let .targetNotEmpty(location, tables):
            return "\(location) is not empty (rows in \(tables.joined(separator: ", "))); copy only into a new, empty database or schema"
        case let .verificationFailed(detail):
            return "the copy did not match its source (\(detail)) and was rolled back"
        }
    }
}

/// What ``Store/copy(to:)`` copied and checked.
public struct StoreCopyReport: Sendable, Equatable {
    /// The rows of one table.
    public struct TableRows: Sendable, Equatable {
        public var table: String
        public var rows: Int
    }

    /// Where the data came from and went to (URLs without their password).
    public var source: String
    public var target: String
    /// The migrations both databases have applied, in order.
    public var migrations: [String]
    /// Every table, in the order copied (each after the tables its foreign keys name),
    /// with its rows: the same count in the source and the target.
    public var tables: [TableRows]
    /// Entries of the audit log, and the last one's id (nil when the log is empty).
    public var auditEntries: Int
    public var lastAuditID: Int64?
    /// The audit chain's SHA-256 (hex), equal on both sides: see ``Store/auditChain(_:)``.
    public var auditDigest: String

    /// Rows in every table together.
    public var totalRows: Int { tables.reduce(0) { $0 + $1.rows } }
}

extension Store {
    /// Copies every table of this store (a SQLite file) into `target` (an empty PostgreSQL
    /// database at the same schema version), then checks the copy, all in one transaction
    /// of the target: nothing is written unless every check passes.
    ///
    /// - The source is read in one read transaction (one consistent snapshot); writes that
    ///   commit to it meanwhile are not copied, so stop its servers first.
    /// - Tables and columns come from the catalogs, not from a list here: a table a future
    ///   migration adds is copied too, and a table or column only one side has refuses the
    ///   copy. Tables go parents first (each after the tables its foreign keys name).
    /// - Refused when the target holds any row, when the two differ in applied migrations,
    ///   or when source and target are the same database.
    /// - Ids are copied as they are; each PostgreSQL identity sequence is then moved past
    ///   the largest id, and past SQLite's AUTOINCREMENT high-water mark, so the next row
    ///   gets a fresh id and no deleted id is handed out again.
    /// - Before committing, every table's row count and the audit log (the same ids, and the
    ///   same SHA-256 chain over every entry) are compared with the source's.
    ///
    /// No audit entry is added: the target's audit log must be the source's, entry for
    /// entry, which is what the check proves.
    public func copy(to target: Store) throws(StoreError) -> StoreCopyReport {
        if target === self || target.location == location {
            throw .copyRefused(.sameDatabase(location: location))
        }
        guard backend is SQLiteBackend, target.backend is PostgresBackend else {
            throw .copyRefused(.unsupportedDirection(source: kindDescription, target: target.kindDescription))
        }
        let sourceLocation = location
        return try read { source in
            try target.write { destination in
                // The target waits while the source is read (the audit chain of millions of
                // entries is hashed before the commit): this one transaction may sit idle
                // longer than servers' sessions may (`idle_in_transaction_session_timeout`).
                try destination.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                // Nor may one statement be held to a server's limits: counting and hashing a
                // large file's rows takes longer than a check's 30 s (`statement_timeout`, and
                // the client's own wait for an answer), and the copy failed (found in review).
                try destination.execute("SET LOCAL statement_timeout = 0")
                var unlimited = destination as? PostgresSQL
                unlimited?.answerLimit = nil
                return try StoreCopier(
                    source: source, target: unlimited ?? destination, sourceLocation: sourceLocation, targetLocation: target.location
                ).run()
            }
        }
    }

    /// Refuses what ``copy(to:)`` would refuse for the locations alone (the same one twice,
    /// a source that is not a SQLite file, a target that is not a PostgreSQL URL), before
    /// either is opened: opening a target creates it.
    public static func checkCopyLocations(from source: String, to target: String) throws(StoreError) {
        if source == target {
            throw .copyRefused(.sameDatabase(location: PostgresLocation.isURL(source) ? PostgresLocation.redact(source) : source))
        }
        guard !PostgresLocation.isURL(source), PostgresLocation.isURL(target) else {
            throw .copyRefused(.unsupportedDirection(source: kindDescription(of: source), target: kindDescription(of: target)))
        }
    }

    /// The kind and place of the database, for messages.
    var kindDescription: String { Self.kindDescription(of: location) }

    /// The kind and place of the database at `location` (a URL without its password).
    static func kindDescription(of location: String) -> String {
        PostgresLocation.isURL(location) ? "PostgreSQL (\(PostgresLocation.redact(location)))" : "SQLite (\(location))"
    }

    /// The audit log's hash chain: `h0 = SHA-256("paywall audit chain v1")`, then for each
    /// entry in id order `h = SHA-256(h || id || at || actor || action || target || details)`,
    /// integers as 8 bytes big-endian, texts as their UTF-8 length (4 bytes big-endian) and
    /// bytes. A chain rather than one hash over everything: it is computed a page of entries
    /// at a time (PaywallCrypto hashes whole buffers), and any changed, missing, extra or
    /// reordered entry changes it.
    static func auditChain(_ db: any SQLConnection) throws -> (entries: Int, lastID: Int64?, digest: [UInt8]) {
        var digest = SHA256.hash("paywall audit chain v1")
        var entries = 0
        var lastID: Int64?
        while true {
            let rows = try db.fetchAll(
                "SELECT id, at, actor, action, target, details FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
                [lastID ?? Int64.min, StoreCopier.pageRows])
            for row in rows {
                let id: Int64 = row[0]
                let at: Int64 = row[1]
                var bytes = digest
                bytes.reserveCapacity(128)
                Self.appendChainInteger(id, to: &bytes)
                Self.appendChainInteger(at, to: &bytes)
                for column in 2...5 {
                    let text: String = row[column]
                    Self.appendChainInteger(UInt32(truncatingIfNeeded: text.utf8.count), to: &bytes)
                    bytes.append(contentsOf: text.utf8)
                }
                digest = SHA256.hash(bytes)
                lastID = id
            }
            entries += rows.count
            if rows.count < StoreCopier.pageRows { break }
        }
        return (entries, lastID, digest)
    }

    private static func appendChainInteger<I: FixedWidthInteger>(_ value: I, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// `name` quoted as an SQL identifier (names come from the catalogs, never from input;
    /// quoted all the same, so any name is one identifier).
    static func quotedIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// One run of ``Store/copy(to:)``: a SQLite read transaction (`source`) and a PostgreSQL
/// write transaction (`target`).
struct StoreCopier {
    let source: any SQLConnection
    let target: any SQLConnection
    let sourceLocation: String
    let targetLocation: String

    /// Rows read from the source per query (rowid tables are read a page at a time, so a
    /// large `reads` table never sits in memory whole).
    static let pageRows = 1_000
    /// At most this many rows in one `INSERT` (and never more than PostgreSQL's 65,535
    /// parameters).
    static let insertRows = 500
    /// PostgreSQL columns that hold what SQLite keeps as the rowid, by table: `sessions.seq`
    /// orders sessions as their rowid does on SQLite (v6-session-families), so it is filled
    /// from the rowid and the order of sessions is kept.
    static let rowidColumns = ["sessions": "seq"]
    /// The rowid's name in the source's SELECT (no table has a column of that name).
    private static let rowidAlias = "paywall_copy_rowid"

    /// A table of the source, as its catalog describes it.
    struct SourceTable {
        var name: String
        /// Columns, in table order.
        var columns: [String]
        /// Whether it has a rowid (not `WITHOUT ROWID`).
        var hasRowid: Bool
        /// The `INTEGER PRIMARY KEY` column (an alias of the rowid), if any.
        var integerKey: String?
        /// The tables its foreign keys name (itself aside).
        var parents: Set<String>
    }

    /// A table of the target: its columns and which are identity columns.
    struct TargetTable {
        var columns: [String] = []
        var identity: Set<String> = []
    }

    func run() throws -> StoreCopyReport {
        let migrations = try checkVersions()
        let tables = try ordered(sourceTables())
        let targetTables = try self.targetTables()
        if let extra = Set(targetTables.keys).subtracting(tables.map(\.name)).sorted().first {
            throw StoreError.copyRefused(.schemasDiffer(detail: "the source has no table \(extra)"))
        }
        let plans = try tables.map { table in try columnPlan(table, targetTables) }
        try refuseNonEmpty(tables)

        var copied: [String: Int] = [:]
        for (table, plan) in zip(tables, plans) {
            copied[table.name] = try copyRows(table, plan)
        }
        try moveSequences(tables, targetTables)

        let counts = try verifyCounts(tables, copied)
        let audit = try verifyAudit()
        return StoreCopyReport(
            source: sourceLocation, target: targetLocation, migrations: migrations,
            tables: counts, auditEntries: audit.entries, lastAuditID: audit.lastID,
            auditDigest: audit.digest.map { String(format: "%02x", $0) }.joined())
    }

    // MARK: - Checks before copying

    /// Both sides' applied migrations; refuses when they differ. Returns them in order.
    private func checkVersions() throws -> [String] {
        let sourceApplied = Set(try source.fetchValues(String.self, "SELECT identifier FROM grdb_migrations"))
        let targetApplied = Set(try target.fetchValues(String.self, "SELECT identifier FROM paywall_migrations"))
        let known = Migrations.identifiers
        func inOrder(_ set: Set<String>) -> [String] {
            known.filter(set.contains) + set.subtracting(known).sorted()
        }
        guard sourceApplied == targetApplied else {
            throw StoreError.copyRefused(.schemaVersionsDiffer(
                sourceOnly: inOrder(sourceApplied.subtracting(targetApplied)),
                targetOnly: inOrder(targetApplied.subtracting(sourceApplied))))
        }
        return inOrder(sourceApplied)
    }

    /// Every table of the source (SQLite's own, the migration records and the facts change
    /// log, which PostgreSQL has no use for, aside), with its columns, rowid and foreign
    /// keys, from the catalog.
    private func sourceTables() throws -> [SourceTable] {
        let listed = try source.fetchAll("""
            SELECT name, wr FROM pragma_table_list
            WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations'
              AND name != 'facts_changes'
            ORDER BY name
            """)
        return try listed.map { row in
            let name: String = row[0]
            let withoutRowid: Bool = row[1]
            let info = try source.fetchAll("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", [name])
            let columns = info.map { column -> String in column[0] }
            let keys = info.filter { column in
                let position: Int = column[2]
                return position > 0
            }
            var integerKey: String?
            if !withoutRowid, keys.count == 1, let key = keys.first {
                let type: String = key[1]
                if type.uppercased() == "INTEGER" { integerKey = key[0] }
            }
            let parents = Set(try source.fetchValues(String.self, "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?)", [name]))
            return SourceTable(
                name: name, columns: columns, hasRowid: !withoutRowid, integerKey: integerKey,
                parents: parents.subtracting([name]))
        }
    }

    /// `tables` with every table after the tables its foreign keys name (by name among
    /// those ready, so the order is always the same). Refuses a foreign key to a table that
    /// does not exist, or a cycle (which no schema of ours has).
    private func ordered(_ tables: [SourceTable]) throws -> [SourceTable] {
        let names = Set(tables.map(\.name))
        for table in tables {
            if let missing = table.parents.subtracting(names).sorted().first {
                throw StoreError.copyRefused(.schemasDiffer(detail: "\(table.name) references \(missing), which the source lacks"))
            }
        }
        var remaining = tables
        var placed: Set<String> = []
        var result: [SourceTable] = []
        while !remaining.isEmpty {
            let ready = remaining.filter { $0.parents.isSubset(of: placed) }
            guard !ready.isEmpty else {
                let stuck = remaining.map(\.name).joined(separator: ", ")
                throw StoreError.copyRefused(.schemasDiffer(detail: "the foreign keys of \(stuck) form a cycle; they cannot be copied in order"))
            }
            for table in ready {
                result.append(table)
                placed.insert(table.name)
            }
            remaining.removeAll { placed.contains($0.name) }
        }
        return result
    }

    /// Every table of the target (the migration records aside) with its columns and
    /// identity columns, from the catalog.
    private func targetTables() throws -> [String: TargetTable] {
        // Cast to text and bool: information_schema's columns are of its own domain types,
        // which the connection need not know how to decode.
        let rows = try target.fetchAll("""
            SELECT c.table_name::text, c.column_name::text, c.is_identity = 'YES'
            FROM information_schema.columns AS c
            JOIN pg_catalog.pg_tables AS t ON t.schemaname = c.table_schema AND t.tablename = c.table_name
            WHERE c.table_schema = current_schema() AND c.table_name != 'paywall_migrations'
            ORDER BY c.table_name, c.ordinal_position
            """)
        var tables: [String: TargetTable] = [:]
        for row in rows {
            let table: String = row[0]
            let column: String = row[1]
            let identity: Bool = row[2]
            tables[table, default: TargetTable()].columns.append(column)
            if identity { tables[table, default: TargetTable()].identity.insert(column) }
        }
        return tables
    }

    /// Which source value fills each target column of `table`: a source column by its
    /// position in the SELECT (after the rowid), or the rowid (``rowidColumns``). Refuses a
    /// table or a column only one side has.
    private func columnPlan(_ table: SourceTable, _ targetTables: [String: TargetTable]) throws -> [(column: String, source: Int)] {
        guard let targetTable = targetTables[table.name] else {
            throw StoreError.copyRefused(.schemasDiffer(detail: "the target has no table \(table.name)"))
        }
        let sourceNames = Set(table.columns)
        var plan: [(column: String, source: Int)] = []
        for (position, column) in table.columns.enumerated() {
            guard targetTable.columns.contains(column) else {
                throw StoreError.copyRefused(.schemasDiffer(detail: "the target's table \(table.name) has no column \(column)"))
            }
            plan.append((column, position + 1))
        }
        for column in targetTable.columns where !sourceNames.contains(column) {
            guard table.hasRowid, Self.rowidColumns[table.name] == column else {
                throw StoreError.copyRefused(.schemasDiffer(detail: "the source's table \(table.name) has no column \(column)"))
            }
            plan.append((column, 0))
        }
        return plan
    }

    /// Refuses a target holding any row, naming every table that has one.
    private func refuseNonEmpty(_ tables: [SourceTable]) throws {
        var occupied: [String] = []
        for table in tables {
            let hasRows = try target.fetchValue(Bool.self, "SELECT EXISTS (SELECT 1 FROM \(Store.quotedIdentifier(table.name)))") ?? false
            if hasRows { occupied.append(table.name) }
        }
        if !occupied.isEmpty {
            throw StoreError.copyRefused(.targetNotEmpty(location: targetLocation, tables: occupied))
        }
    }

    // MARK: - Copying

    /// Copies the rows of `table` with bound parameters, a page at a time; returns how many.
    private func copyRows(_ table: SourceTable, _ plan: [(column: String, source: Int)]) throws -> Int {
        guard !table.columns.isEmpty else { return 0 }
        let name = Store.quotedIdentifier(table.name)
        let selected = table.columns.map(Store.quotedIdentifier).joined(separator: ", ")
        var copied = 0
        if table.hasRowid {
            // Keyset pages in rowid order: each page is one indexed range, and a session's
            // rowid (its `seq`) comes along.
            var after = Int64.min
            while true {
                let rows = try source.fetchAll(
                    "SELECT rowid AS \(Self.rowidAlias), \(selected) FROM \(name) WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    [after, Self.pageRows])
                guard let last = rows.last else { break }
                after = last[0]
                try insert(rows, into: table.name, plan)
                copied += rows.count
                if rows.count < Self.pageRows { break }
            }
        } else {
            // WITHOUT ROWID tables (catalog links, billing mappings and subscriptions, the
            // sign-in throttle) grow with the catalog and the accounts, not with traffic:
            // read whole. A constant 0 stands where the rowid would be, so positions match.
            let rows = try source.fetchAll("SELECT 0 AS \(Self.rowidAlias), \(selected) FROM \(name)")
            var start = 0
            while start < rows.count {
                let end = min(rows.count, start + Self.pageRows)
                try insert(Array(rows[start..<end]), into: table.name, plan)
                start = end
            }
            copied = rows.count
        }
        return copied
    }

    /// Inserts `rows` into `table` of the target, ``insertRows`` per statement, every value a
    /// bound parameter. Ids are given explicitly (`OVERRIDING SYSTEM VALUE` would let them
    /// into a `GENERATED ALWAYS` identity too; ours are `BY DEFAULT`, where it changes nothing).
    private func insert(_ rows: [SQLRow], into table: String, _ plan: [(column: String, source: Int)]) throws {
        let perStatement = max(1, min(Self.insertRows, 60_000 / max(1, plan.count)))
        let columns = plan.map { Store.quotedIdentifier($0.column) }.joined(separator: ", ")
        let tuple = "(" + Array(repeating: "?", count: plan.count).joined(separator: ", ") + ")"
        var start = 0
        while start < rows.count {
            let end = min(rows.count, start + perStatement)
            var arguments = SQLArguments([])
            arguments.values.reserveCapacity((end - start) * plan.count)
            for row in rows[start..<end] {
                for entry in plan { arguments.values.append(row.values[entry.source]) }
            }
            let values = Array(repeating: tuple, count: end - start).joined(separator: ", ")
            try target.execute(
                "INSERT INTO \(Store.quotedIdentifier(table)) (\(columns)) OVERRIDING SYSTEM VALUE VALUES \(values)", arguments)
            start = end
        }
    }

    /// Moves every identity sequence of the target past the largest value copied into its
    /// column, and for an id SQLite gave out with AUTOINCREMENT, past the largest it ever
    /// gave (`sqlite_sequence`: a deleted membership's id is not handed out again).
    private func moveSequences(_ tables: [SourceTable], _ targetTables: [String: TargetTable]) throws {
        let hasSequenceTable = try source.fetchValue(
            Bool.self, "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence')") ?? false
        for table in tables {
            for column in targetTables[table.name]?.identity.sorted() ?? [] {
                var floor: Int64 = 0
                if hasSequenceTable, column == table.integerKey {
                    floor = try source.fetchValue(Int64.self, "SELECT seq FROM sqlite_sequence WHERE name = ?", [table.name]) ?? 0
                }
                let largest = try target.fetchValue(
                    Int64.self, "SELECT MAX(\(Store.quotedIdentifier(column))) FROM \(Store.quotedIdentifier(table.name))") ?? 0
                let next = max(largest, floor, 0) + 1
                try target.execute(
                    "SELECT setval(pg_get_serial_sequence(?, ?), ?, false)",
                    [Store.quotedIdentifier(table.name), column, next])
            }
        }
    }

    // MARK: - Checks after copying

    /// Each table's rows counted on both sides (and as copied); refuses any difference.
    private func verifyCounts(_ tables: [SourceTable], _ copied: [String: Int]) throws -> [StoreCopyReport.TableRows] {
        try tables.map { table in
            let name = Store.quotedIdentifier(table.name)
            let inSource = try source.fetchValue(Int.self, "SELECT COUNT(*) FROM \(name)") ?? 0
            let inTarget = try target.fetchValue(Int.self, "SELECT COUNT(*) FROM \(name)") ?? 0
            guard inSource == inTarget, inTarget == copied[table.name] else {
                throw StoreError.copyRefused(.verificationFailed(
                    detail: "\(table.name): \(inSource) rows in the source, \(inTarget) in the target, \(copied[table.name] ?? 0) copied"))
            }
            return StoreCopyReport.TableRows(table: table.name, rows: inTarget)
        }
    }

    /// The audit chain of both sides; refuses any difference.
    private func verifyAudit() throws -> (entries: Int, lastID: Int64?, digest: [UInt8]) {
        let inSource = try Store.auditChain(source)
        let inTarget = try Store.auditChain(target)
        guard inSource.entries == inTarget.entries, inSource.lastID == inTarget.lastID else {
            throw StoreError.copyRefused(.verificationFailed(
                detail: "the audit log has \(inSource.entries) entries in the source, \(inTarget.entries) in the target"))
        }
        guard inSource.digest == inTarget.digest else {
            throw StoreError.copyRefused(.verificationFailed(detail: "the audit log's SHA-256 chain differs between source and target"))
        }
        return inSource
    }
}
