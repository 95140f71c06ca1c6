import Foundation
import PaywallCore

/// What one pruning pass deleted.
public struct PruneReport: Sendable, Equatable {
    public var sessions = 0
    public var sessionDevices = 0
    public var emailLinks = 0
    public var outbox = 0
    public var adminTokenRevocations = 0
    public init() {}

    /// Each count by name, in one order: what the audit entry, the server's log line and
    /// `paywall db prune` show.
    public var counts: [(name: String, count: Int)] {
        [("sessions", sessions), ("sessionDevices", sessionDevices), ("emailLinks", emailLinks), ("outbox", outbox),
         ("adminTokenRevocations", adminTokenRevocations)]
    }

    /// Rows deleted in all.
    public var total: Int { counts.reduce(0) { $0 + $1.count } }
}

extension Store {
    /// Rows kept this long after they stop mattering (an expired refresh token is refused
    /// either way; a week keeps recent history for support questions).
    public static let pruneAfter: TimeInterval = 7 * 86_400

    /// Deletes what only grows and no longer matters: refresh-token rows expired more than
    /// ``pruneAfter`` ago (every refresh adds one: about 3,000 a month for an active
    /// reader), device names of session families with no row left, expired email links,
    /// outbox messages sent or expired more than ``pruneAfter`` ago, and admin token
    /// revocations past every token they cover. One transaction;
    /// nothing a live session, link or unsent message needs is touched.
    public func prune(at now: Date? = nil) throws(StoreError) -> PruneReport {
        let at = now ?? clock.now()
        let cutoff = at.addingTimeInterval(-Self.pruneAfter).millis
        return try write { db in
            var report = PruneReport()
            report.sessions = try db.execute("DELETE FROM sessions WHERE expires_at < ?", [cutoff])
            report.sessionDevices = try db.execute("DELETE FROM session_devices WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.family_id = session_devices.family_id)")
            report.emailLinks = try db.execute("DELETE FROM email_links WHERE expires_at < ?", [at.millis])
                + (try db.execute("DELETE FROM email_reverts WHERE expires_at < ?", [at.millis]))
            report.outbox = try db.execute("DELETE FROM outbox WHERE (sent_at IS NOT NULL AND sent_at < ?) OR expires_at < ?", [cutoff, cutoff])
            // A revocation outlives every token it covers by `keep_until`: then it is moot.
            report.adminTokenRevocations = try db.execute("DELETE FROM admin_token_revocations WHERE keep_until < ?", [at.millis])
            // Stored rate limits refill within hours: a row untouched for a day is full again.
            try db.execute("DELETE FROM rate_limits WHERE updated_at < ?", [at.addingTimeInterval(-86_400).millis])
            // Sign-in failure counters whose window began before the cutoff and whose block
            // is over limit no one (a later failure would count from one).
            try db.execute("DELETE FROM sign_in_failures WHERE window_start < ? AND blocked_until < ?", [cutoff, at.millis])
            if db.dialect == .sqlite {
                // The facts change log (``SQLiteFactsChanges``): a day is far past what a
                // cached fact lives (a minute). Its times are the triggers' own (SQLite's
                // clock, seconds), so they are compared in SQL. Not reported: housekeeping.
                try db.execute("DELETE FROM facts_changes WHERE changed_at < CAST(strftime('%s', 'now') AS INTEGER) - 86400")
            }
            return report
        }
    }
}
