import Foundation
import PaywallCore

/// A limit every server counts alike: a token bucket kept in the store, `burst` at once,
/// then one every `interval`. For the limits of per-account actions that each cost a
/// password check and write or read much (an email change, a data export): in memory they
/// were per server and forgotten by a restart, so a reader behind a load balancer of N
/// servers had N budgets. The limits that shield the database from floods (sign-ups,
/// reset requests and devices per client address) stay in memory, before any query.
public struct StoredRateLimit: Sendable, Equatable {
    /// The bucket's kind (`email-change`, `export`): one row per kind and key.
    public var scope: String
    public var burst: Int
    public var interval: TimeInterval

    /// `burst × interval` (the time an empty bucket takes to fill) is held to a day: rows
    /// untouched for a day are pruned as full (``Store/prune(at:)``).
    public init(scope: String, burst: Int, interval: TimeInterval) {
        self.scope = scope
        self.burst = max(1, burst)
        self.interval = min(max(0.001, interval), 86_400 / Double(self.burst))
    }
}

extension Store {
    /// Takes one of `limit`'s tokens for `key` (an account id) in a write transaction of
    /// its own: nil when allowed, else the seconds until one is free. Exact across servers:
    /// the row is made if missing, then read and written in one transaction (SQLite has
    /// one writer; PostgreSQL's writes are SERIALIZABLE and retried).
    public func takeRateToken(_ limit: StoredRateLimit, key: String) throws(StoreError) -> TimeInterval? {
        let burst = Double(limit.burst)
        return try write { db -> TimeInterval? in
            // Read in the transaction: a retried one (PostgreSQL) counts from its own time.
            let now = storedNow()
            try db.execute(
                "INSERT INTO rate_limits (scope, key, tokens, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING",
                [limit.scope, key, burst, now.millis])
            guard let row = try db.fetchOne("SELECT tokens, updated_at FROM rate_limits WHERE scope = ? AND key = ?", [limit.scope, key]) else {
                throw StoreError.corrupt(path: location, detail: "the rate limit row \(limit.scope)/\(key) vanished inside its transaction")
            }
            var bucket = TokenBucket(tokens: row[0], updated: Date(millis: row[1]))
            let wait = bucket.take(at: now, burst: burst, interval: limit.interval)
            try db.execute(
                "UPDATE rate_limits SET tokens = ?, updated_at = ? WHERE scope = ? AND key = ?",
                [bucket.tokens, bucket.updated.millis, limit.scope, key])
            return wait
        }
    }
}
