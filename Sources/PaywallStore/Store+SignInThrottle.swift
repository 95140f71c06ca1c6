import Foundation
import PaywallCore

extension Store {
    /// The sign-in throttle's key for an account's email: any spelling that reaches its
    /// password (``EmailAddress/lookupKey``) shares it.
    public static func signInThrottleKey(email: EmailAddress) -> String { "email:" + email.lookupKey }

    /// The throttle's key for a signed-in reader asked for its password again: the
    /// account's own, apart from the email's, which anyone at the sign-in form may spend.
    public static func reverificationThrottleKey(_ accountID: AccountID) -> String { "reauth:" + accountID.rawValue }

    /// The latest moment until which any of `keys` is blocked from signing in, if one is
    /// blocked at `now`. Keys are the service's (`email:…`, `client:…`). (The service claims
    /// attempts instead: ``claimSignInAttempt(keys:at:)``; tests read the counters with this.)
    func signInBlockedUntil(keys: [String], at now: Date) throws(StoreError) -> Date? {
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
    /// (Tests count failures with this; the service claims them before the hash.)
    @discardableResult
    func recordSignInFailure(
        keys: [(key: String, window: TimeInterval, block: (Int) -> TimeInterval)], at now: Date
    ) throws(StoreError) -> Date? {
        try write { db in try Self.countFailures(db, keys: keys, at: now) }
    }

    /// One claimed sign-in attempt (``claimSignInAttempt(keys:at:)``): refused until a time,
    /// or counted, with each key's block before and after the count (for the refund).
    public struct SignInClaim: Sendable, Equatable {
        /// Set when a key is blocked: nothing was counted.
        public var refusedUntil: Date?
        /// Per key, `blocked_until` before the claim and as the claim left it (milliseconds).
        var blocks: [String: (before: Int64, after: Int64)] = [:]
        public static func == (a: SignInClaim, b: SignInClaim) -> Bool {
            a.refusedUntil == b.refusedUntil && a.blocks.mapValues { [$0.before, $0.after] } == b.blocks.mapValues { [$0.before, $0.after] }
        }
    }

    /// Takes one sign-in attempt for `keys` before the password is checked: refused (the
    /// latest block returned, nothing written) while any key is blocked; else counted as a
    /// failure at once, in the same transaction, and ``refundSignInAttempt(_:keys:)`` takes
    /// it back if the password was right. Counting only after the hash let concurrent
    /// guesses all pass the check before any was counted: 16 wrong passwords sent at once
    /// were all tried where 5 are free (measured, 2026-11-28).
    public func claimSignInAttempt(
        keys: [(key: String, window: TimeInterval, block: (Int) -> TimeInterval)], at now: Date
    ) throws(StoreError) -> SignInClaim {
        try write { db in
            var claim = SignInClaim()
            var before: [String: Int64] = [:]
            var latest: Int64 = 0
            for entry in keys {
                let until = try db.fetchValue(Int64.self, "SELECT blocked_until FROM sign_in_failures WHERE key = ?", [entry.key]) ?? 0
                before[entry.key] = until
                latest = max(latest, until)
            }
            if latest > now.millis {
                claim.refusedUntil = Date(millis: latest)
                return claim
            }
            try Self.countFailures(db, keys: keys, at: now)
            for entry in keys {
                let after = try db.fetchValue(Int64.self, "SELECT blocked_until FROM sign_in_failures WHERE key = ?", [entry.key]) ?? 0
                claim.blocks[entry.key] = (before[entry.key] ?? 0, after)
            }
            return claim
        }
    }

    /// Takes back an attempt ``claimSignInAttempt(keys:at:)`` counted (the password was
    /// right, or the check failed for a reason of ours): one failure fewer, and the block
    /// as it was before the claim, unless a later attempt has set another since (a right
    /// password must not leave a wait behind for the next reader at the same address).
    public func refundSignInAttempt(_ claim: SignInClaim, keys: [String]) throws(StoreError) {
        try write { db in
            for key in keys {
                guard let (before, after) = claim.blocks[key],
                      let row = try db.fetchOne("SELECT failures, blocked_until FROM sign_in_failures WHERE key = ?", [key]) else { continue }
                let failures = max(0, (row[0] as Int) - 1)
                let current: Int64 = row[1]
                try db.execute("UPDATE sign_in_failures SET failures = ?, blocked_until = ? WHERE key = ?", [failures, current == after ? before : current, key])
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
