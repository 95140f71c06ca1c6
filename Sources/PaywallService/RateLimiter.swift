import Foundation
import PaywallCore
import Synchronization

/// A token bucket per key (a client address, say): `burst` requests at once, then one
/// every `interval`. Bounded in memory: at most `maximumKeys` keys, in two generations
/// (``Generations``): a client that keeps asking stays (each request moves it to the young
/// one), a client quiet while about half the table's worth of others came is forgotten, and
/// starts again with a full bucket.
///
/// Why not refuse newcomers while the table is full of clients still being limited, as
/// until the eighteenth session: an attacker with 100,000 addresses (IPv6 /64s are cheap)
/// kept the table full, and every new reader was refused a device token, every sign-up
/// and password reset too; and each refusal copied the whole table under the lock (found
/// in review). Forgetting a quiet client costs it nothing it was owed.
public final class RateLimiter: Sendable {
    private let buckets: Mutex<Generations<String, TokenBucket>>
    public let burst: Double
    public let interval: TimeInterval
    public let maximumKeys: Int

    public init(burst: Int, interval: TimeInterval, maximumKeys: Int = 100_000) {
        self.burst = Double(max(1, burst))
        self.interval = max(0.001, interval)
        self.maximumKeys = max(2, maximumKeys)
        buckets = Mutex(Generations(capacity: self.maximumKeys))
    }

    /// Takes one token for `key`: nil when allowed, else the seconds until one is free.
    public func take(_ key: String, at now: Date) -> TimeInterval? {
        var dropped: [String: TokenBucket] = [:]
        let wait = buckets.withLock { buckets in
            var bucket = buckets.removeValue(forKey: key) ?? TokenBucket(tokens: burst, updated: now)
            let wait = bucket.take(at: now, burst: burst, interval: interval)
            dropped = buckets.insert(key, bucket)
            return wait
        }
        _ = dropped  // a generation dropped is released here, after the lock
        return wait
    }

    /// Keys held now (at most ``maximumKeys``).
    public var count: Int { buckets.withLock { $0.count } }
}
