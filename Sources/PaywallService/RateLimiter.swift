import Foundation
import Synchronization

/// A token bucket per key (a client address, say): `burst` requests at once, then one
/// every `interval`. Bounded in memory: past `maximumKeys` keys, refilled buckets are
/// dropped; if every bucket is still limiting someone, new keys are refused until some
/// refill (never forgetting a client being limited).
public final class RateLimiter: Sendable {
    private struct Bucket: Sendable {
        var tokens: Double
        var updated: Date
    }

    private let buckets = Mutex<[String: Bucket]>([:])
    public let burst: Double
    public let interval: TimeInterval
    public let maximumKeys: Int

    public init(burst: Int, interval: TimeInterval, maximumKeys: Int = 100_000) {
        self.burst = Double(max(1, burst))
        self.interval = max(0.001, interval)
        self.maximumKeys = max(1, maximumKeys)
    }

    /// Takes one token for `key`: nil when allowed, else the seconds until one is free.
    public func take(_ key: String, at now: Date) -> TimeInterval? {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let refill = max(0, now.timeIntervalSince(bucket.updated)) / interval
            bucket.tokens = min(burst, bucket.tokens + refill)
            bucket.updated = now
            if bucket.tokens >= 1 {
                if buckets[key] == nil, buckets.count >= maximumKeys {
                    Self.prune(&buckets, now: now, burst: burst, interval: interval)
                    // Still full of clients being limited: refuse newcomers rather than
                    // forget the limited (an attacker filling the table must not reset it).
                    if buckets.count >= maximumKeys { return interval }
                }
                bucket.tokens -= 1
                buckets[key] = bucket
                return nil
            }
            buckets[key] = bucket
            return (1 - bucket.tokens) * interval
        }
    }

    /// Drops the buckets that have refilled (they hold no state worth keeping).
    private static func prune(_ buckets: inout [String: Bucket], now: Date, burst: Double, interval: TimeInterval) {
        buckets = buckets.filter { _, bucket in bucket.tokens + now.timeIntervalSince(bucket.updated) / interval < burst }
    }
}
