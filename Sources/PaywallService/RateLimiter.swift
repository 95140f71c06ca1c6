import Foundation
import PaywallCore
import Synchronization

/// A token bucket per key (a client address, say): `burst` requests at once, then one
/// every `interval`. Bounded in memory: past `maximumKeys` keys, refilled buckets are
/// dropped; if every bucket is still limiting someone, new keys are refused until some
/// refill (never forgetting a client being limited).
public final class RateLimiter: Sendable {
    private let buckets = Mutex<[String: TokenBucket]>([:])
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
            if buckets[key] == nil, buckets.count >= maximumKeys {
                buckets = buckets.filter { !$0.value.isFull(at: now, burst: burst, interval: interval) }
                // Still full of clients being limited: refuse newcomers rather than forget
                // the limited (an attacker filling the table must not reset it).
                if buckets.count >= maximumKeys { return interval }
            }
            var bucket = buckets[key] ?? TokenBucket(tokens: burst, updated: now)
            let wait = bucket.take(at: now, burst: burst, interval: interval)
            buckets[key] = bucket
            return wait
        }
    }
}
