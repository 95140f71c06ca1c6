import Foundation

/// The source of "now" for everything that depends on time (trial expiry, meter windows,
/// grace periods, token lifetimes). Inject a ``ManualClock`` in tests to move time.
public protocol PaywallClock: Sendable {
    /// The current instant.
    func now() -> Date
}

/// The wall clock.
public struct SystemClock: PaywallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that only moves when told to; safe to share between tasks.
public final class ManualClock: PaywallClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    /// Creates a clock stopped at `start`.
    public init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) {  // 2026-01-01T00:00:00Z
        current = start
    }

    public func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Moves the clock forward (or backward, with a negative interval).
    public func advance(by interval: TimeInterval) {
        lock.lock()
        current = current.addingTimeInterval(interval)
        lock.unlock()
    }

    /// Sets the clock to an instant.
    public func set(_ date: Date) {
        lock.lock()
        current = date
        lock.unlock()
    }
}
