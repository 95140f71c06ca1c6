import Logging
import Synchronization

/// The log lines of refusals and failures, the API's and the web pages' alike: an
/// outage's one a second per code, the rest 20 a second per code, so that a client sending
/// bad requests as fast as it can (each costs it one request) cannot fill the disk, and a
/// 30 s database stop does not write a line per request (10,000 in review). The next line
/// of a code held back says how many were not written (`alike_not_logged`). One per
/// router, and one per site (each test its own).
public final class LogLimits: Sendable {
    let outage = LogThrottle(every: .seconds(1))
    let others = LogThrottle(every: .seconds(1), lines: 20)

    public init() {}

    /// Logs `message` unless too many of `code` were logged this second.
    public func log(
        _ logger: Logger, _ level: Logger.Level, _ message: Logger.Message, code: String, outage isOutage: Bool = false, metadata: Logger.Metadata = [:]
    ) {
        guard let held = (isOutage ? outage : others).pass(code: code) else { return }
        var metadata = metadata
        if held > 0 { metadata["alike_not_logged"] = .stringConvertible(held) }
        logger.log(level: level, message, metadata: metadata)
    }
}

/// At most so many log lines per code in each interval (one by default); the next line
/// passed says how many were held back (``LogLimits``).
public final class LogThrottle: Sendable {
    private let every: Duration
    private let lines: Int
    /// Per code: when its window began, the lines passed in it, and those held back since
    /// the last line passed.
    private let state = Mutex<[String: (start: ContinuousClock.Instant, passed: Int, held: Int)]>([:])

    /// At most `lines` lines per code in each window of `every`.
    public init(every: Duration, lines: Int = 1) {
        self.every = every
        self.lines = max(1, lines)
    }

    /// Nil: do not log this one. Otherwise log it, saying how many like it were not.
    public func pass(code: String, at now: ContinuousClock.Instant = .now) -> Int? {
        state.withLock { state in
            var entry = state[code] ?? (now, 0, 0)
            if now - entry.start >= every { (entry.start, entry.passed) = (now, 0) }
            guard entry.passed < lines else {
                state[code] = (entry.start, entry.passed, entry.held + 1)
                return nil
            }
            state[code] = (entry.start, entry.passed + 1, 0)
            return entry.held
        }
    }
}
