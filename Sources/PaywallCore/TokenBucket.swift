import Foundation

/// A token bucket: `burst` takes at once, then one every `interval`. The arithmetic both
/// rate limiters share: the one in memory, per server, in front of any query
/// (`RateLimiter`), and the one in the store, one budget for every server
/// (`Store.takeRateToken`).
public struct TokenBucket: Sendable, Equatable {
    public var tokens: Double
    /// When `tokens` was last brought up to date.
    public var updated: Date

    public init(tokens: Double, updated: Date) {
        self.tokens = tokens
        self.updated = updated
    }

    /// Refills for the time since ``updated`` (never past `burst`; never back in time, so a
    /// clock a little behind another's refills nothing twice), then takes one token if there
    /// is a whole one: nil when taken, else the seconds until one is free (nothing taken).
    public mutating func take(at now: Date, burst: Double, interval: TimeInterval) -> TimeInterval? {
        tokens = min(burst, tokens + max(0, now.timeIntervalSince(updated)) / interval)
        updated = max(updated, now)
        guard tokens >= 1 else { return (1 - tokens) * interval }
        tokens -= 1
        return nil
    }

    /// Whether it has refilled to `burst` by `now` (it then holds nothing worth keeping).
    public func isFull(at now: Date, burst: Double, interval: TimeInterval) -> Bool {
        tokens + now.timeIntervalSince(updated) / interval >= burst
    }
}
