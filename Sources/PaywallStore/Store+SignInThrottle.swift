import Foundation
import PaywallCore

extension Store {
    /// The latest moment until which any of `keys` is blocked from signing in, if one is
    /// blocked at `now`. Keys are the service's (`email:…`, `client:…`).
    public func signInBlockedUntil(keys: [String], at now: Date) throws(StoreError) -> Date? {
        try read { db in
            var latest: Int64 = 0
            for key in keys {
                let until = try db.fetchValue(Int64.self, "SELECT blocked_until FROM sign_in_failures WHERE key = ?", [key]) ?? 0
                latest = max(latest, until)
            }
            return latest > now.millis ? Date(millis: latest) : nil
        }
    }

    /// Counts one failed sign-in against each key, in one durable transaction (the counters
    /// survive a restart, so restarting the server does not reset an attacker's budget).
    /// The read and the upsert of a counter are exact across servers: one writer on
    /// SQLite; on PostgreSQL a SERIALIZABLE transaction that read a counter another one
    /// changed fails and is retried, so no failure is lost to a concurrent one.
    /// A key's count restarts once its `window` has passed since its first failure; `block`
    /// turns a count into how long the key must wait before the next attempt (0: none).
    /// A row whose window is over counts from one again; ``prune(at:)`` drops rows that no
    /// longer limit anyone (not here: on PostgreSQL a table-wide delete in every failure's
    /// SERIALIZABLE transaction would make concurrent failures on unrelated keys conflict).
    /// Returns the latest block set, if any.
    @discardableResult
    public func recordSignInFailure(
        keys: [(key: String, window: TimeInterval, block: (Int) -> TimeInterval)], at now: Date
    ) throws(StoreError) -> Date? {
        try write { db in try Self.countFailures(db, keys: keys, at: now) }
    }

    /// Takes one sign-in attempt for `keys` before the password is checked: refused (the
    /// latest block returned, nothing written) while any key is blocked; else counted as a
    /// failure at once, in the same transaction, and ``refundSignInAttempt(keys:at:)``
    /// takes it back if the password was right. Counting only after the hash let
    /// concurrent guesses all pass the check before any was counted: 16 wrong passwords
    /// sent at once were all tried where 5 are free (measured, 2026-11-28).
    public func claimSignInAttempt(
        keys: [(key: String, window: TimeInterval, block: (Int) -> TimeInterval)], at now: Date
    ) throws(StoreError) -> Date? {
        try write { db in
            var latest: Int64 = 0
            for entry in keys {
                latest = max(latest, try db.fetchValue(Int64.self, "SELECT blocked_until FROM sign_in_failures WHERE key = ?", [entry.key]) ?? 0)
            }
            if latest > now.millis { return Date(millis: latest) }
            try Self.countFailures(db, keys: keys, at: now)
            return nil
        }
    }

    /// Takes back an attempt ``claimSignInAttempt(keys:at:)`` counted (the password was
    /// right, or the check failed for a reason of ours): one failure fewer, and the block
    /// the count set lifted when one fewer deserves none.
    public func refundSignInAttempt(keys: [(key: String, window: TimeInterval, block: (Int) -> TimeInterval)], at now: Date) throws(StoreError) {
        try write { db in
            for entry in keys {
                guard let row = try db.fetchOne("SELECT failures, window_start FROM sign_in_failures WHERE key = ?", [entry.key]) else { continue }
                let failures = max(0, (row[0] as Int) - 1)
                // A window that ended meanwhile was restarted by the claim: nothing earlier to keep.
                let lift = failures == 0 || entry.block(failures) <= 0
                try db.execute(
                    lift ? "UPDATE sign_in_failures SET failures = ?, blocked_until = 0 WHERE key = ?" : "UPDATE sign_in_failures SET failures = ? WHERE key = ?",
                    [failures, entry.key])
            }
        }
    }

    /// One more failure for each key (the body of the two above). Returns the latest block set.
    @discardableResult
    static func countFailures(
        _ db: any SQLConnection, keys: [(key: String, window: TimeInterval, block: (Int) -> TimeInterval)], at now: Date
    ) throws -> Date? {
        var latest: Date?
        for entry in keys {
            let row = try db.fetchOne("SELECT failures, window_start FROM sign_in_failures WHERE key = ?", [entry.key])
            var failures = 1
            var start = now.millis
            if let row, Date(millis: row[1]) > now.addingTimeInterval(-entry.window) {
                failures = (row[0] as Int) + 1
                start = row[1]
            }
            let wait = max(0, entry.block(failures))
            let until = wait > 0 ? now.addingTimeInterval(wait) : nil
            try db.execute("""
                INSERT INTO sign_in_failures (key, failures, window_start, blocked_until) VALUES (?, ?, ?, ?)
                ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start,
                    blocked_until = excluded.blocked_until
                """, [entry.key, failures, start, until?.millis ?? 0])
            if let until, until > (latest ?? .distantPast) { latest = until }
        }
        return latest
    }

    /// Forgets the failures of `key` (after a successful sign-in to that account).
    public func clearSignInFailures(key: String) throws(StoreError) {
        try write { db in
            try db.execute("DELETE FROM sign_in_failures WHERE key = ?", [key])
        }
    }
}
