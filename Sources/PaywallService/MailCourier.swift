import Foundation

/// Delivers queued mail on a thread of its own, never inside the request that queued it.
///
/// Why: a request that ran the sendmail command itself held a blocking-pool thread for as
/// long as the command took (up to its timeout, for each message due): with the mail server
/// hanging, a few dozen password-reset requests took every pool thread, and sign-ins,
/// refreshes and gifts queued behind them. It also made "forgot password" for a known
/// address measurably slower than for an unknown one. Now a request only queues (a durable
/// write) and nudges this courier; the courier works through what is due, one message
/// after another, and wakes again for retries.
final class MailCourier: @unchecked Sendable {
    private let condition = NSCondition()
    private var nudged = false
    private var running = false
    private var stopping = false
    /// A pass is running now (it may have looked at the outbox before a new message).
    private var inPass = false
    /// Passes finished (tests wait on it through ``flush()``).
    private var passes = 0
    /// How long the courier sleeps before looking for retries that fell due.
    let retryInterval: TimeInterval

    init(retryInterval: TimeInterval = 60) {
        self.retryInterval = retryInterval
    }

    /// Asks for a delivery pass soon; starts the courier thread on first use. `deliver`
    /// runs one pass (it is kept by the thread until ``stop()``).
    func nudge(_ deliver: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return }
        nudged = true
        condition.broadcast()
        guard !running else { return }
        running = true
        Thread.startNamed("paywall-mail") { [self] in run(deliver) }
    }

    private func run(_ deliver: @Sendable () -> Void) {
        condition.lock()
        while !stopping {
            if !nudged {
                _ = condition.wait(until: Date().addingTimeInterval(retryInterval))
                if stopping { break }
            }
            nudged = false
            inPass = true
            condition.unlock()
            deliver()
            condition.lock()
            inPass = false
            passes += 1
            condition.broadcast()
        }
        running = false
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until a pass that started after this call has finished (or `timeout`):
    /// for `paywall mail deliver`-like callers and tests that must see the mail sent.
    @discardableResult
    func flush(_ deliver: @escaping @Sendable () -> Void, timeout: TimeInterval = 60) -> Bool {
        condition.lock()
        // A pass under way may have read the outbox already: wait for the one after it.
        let target = passes + (inPass ? 2 : 1)
        condition.unlock()
        nudge(deliver)
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while passes < target, running {
            if !condition.wait(until: deadline) { return false }
        }
        return passes >= target
    }

    /// Whether ``stop()`` was asked: a pass checks it before each message, so a stop waits
    /// for one sendmail run at most, not a pass of twenty (a hanging mail server held a
    /// SIGTERM for minutes, past any orchestrator's grace period).
    var stopRequested: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    /// Ends the courier after the message in progress, if any.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }
}
