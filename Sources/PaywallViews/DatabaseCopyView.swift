import PaywallStore

/// What `paywall db copy` copied and checked.
public struct DatabaseCopyView: Encodable, Sendable {
    public struct Table: Encodable, Sendable {
        public var table: String
        public var rows: Int
    }

    public var source: String
    public var target: String
    public var migrations: [String]
    /// In the order copied (parents before children); the same count on both sides.
    public var tables: [Table]
    public var totalRows: Int
    public var auditEntries: Int
    public var lastAuditID: Int64?
    /// SHA-256 (hex) of the audit log's hash chain, equal on both sides.
    public var auditDigest: String

    public init(_ report: StoreCopyReport) {
        source = report.source
        target = report.target
        migrations = report.migrations
        tables = report.tables.map { Table(table: $0.table, rows: $0.rows) }
        totalRows = report.totalRows
        auditEntries = report.auditEntries
        lastAuditID = report.lastAuditID
        auditDigest = report.auditDigest
    }
}
