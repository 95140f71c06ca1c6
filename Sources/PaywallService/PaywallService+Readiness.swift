import Foundation
import Synchronization

/// What `/readyz` reports (the database took a write transaction, or this was thrown).
public struct Readiness: Sendable {
    public var policyRevision: String
    public var signingKey: String
}

extension PaywallService {
    /// Whether the service can take requests: the database takes a write transaction, the
    /// policy is loaded and a key signs. Throws the reason when it cannot.
    public func readiness() throws(ServiceError) -> Readiness {
        let policy = try policy()
        let ring = try keyRing()
        guard let signer = ring.signingRecord(at: now) else { throw .keys(.noSigningKey(path: configuration.keysDirectory.path)) }
        try mapped { try store.checkWritable() }
        return Readiness(policyRevision: policy.revision, signingKey: signer.kid)
    }

    /// Says a request met the database unavailable: `/readyz` checks again at its next
    /// probe instead of reusing a success from before (the HTTP error middleware calls it).
    public func databaseUnavailableSeen() {
        readinessProbe.forgetSuccess()
    }

    /// ``readiness()`` for a probe: answered within `deadline`, and probes share checks.
    ///
    /// Why: against a stalled database the check's write waits until the store gives up
    /// (PostgreSQL: its answer limit, 40 s), so `/readyz` answered nothing for that long,
    /// and each probe meanwhile held a blocking thread of its own. Now a probe joins the
    /// check in flight (``ReadinessProbe``) and past `deadline` is answered not ready
    /// (``ServiceError/notReady(_:)``); a check that fails at once (no signing key) is
    /// answered with its own error at once.
    public func readiness(within deadline: Duration) async throws(ServiceError) -> Readiness {
        try await readinessProbe.answer(within: deadline) { [self] () async -> Result<Readiness, ServiceError> in
            do throws(ServiceError) {
                return .success(try await blocking { service throws(ServiceError) in try service.readiness() })
            } catch {
                return .failure(error)
            }
        }
    }
}

/// Readiness checks in flight, shared by the probes that arrive while they run.
///
/// A probe joins the newest check, unless that one has run longer than the probe's
/// deadline: a check stuck on a stalled database (up to the store's answer limit) must not
/// keep a recovered server out of its load balancer's rotation, so a new check starts
/// then, at most ``maximumInFlight`` at once. A probe waits as a continuation in its
/// check's list (no task of its own), answered by the check or by its deadline, whichever
/// comes first (found in review: a task per probe, each waiting on a check that might
/// never end, and a timer left running after the answer).
final class ReadinessProbe: Sendable {
    typealias Check = @Sendable () async -> Result<Readiness, ServiceError>

    /// Checks running at once, at most (each holds a blocking thread while it waits).
    static let maximumInFlight = 3

    /// How long a successful check answers later probes without a new one. `/readyz` is
    /// public, and each check is a write transaction: probes back to back kept one in
    /// progress almost all the time, beside the commits of metered reads (found in
    /// review). A failure is never reused, so a recovered server is ready at the next probe;
    /// and a success is forgotten as soon as a request meets the database unavailable
    /// (``forgetSuccess()``), so an outage shorter than the reuse is still reported.
    let reuse: Duration

    private struct Running {
        /// ``State/forgets`` when the check began: a success found by a check begun before
        /// an outage was seen is not kept for reuse (found in review: it put back the
        /// success just forgotten).
        var forgets = 0
        let started: ContinuousClock.Instant
        var waiters: [Waiter]
    }

    private struct State {
        var running: [Int: Running] = [:]
        var nextID = 0
        /// The latest successful answer, and when its check ended.
        var lastReady: (at: ContinuousClock.Instant, readiness: Readiness)?
        /// Checks started, for tests.
        var started = 0
        /// Times the success was forgotten (``forgetSuccess()``).
        var forgets = 0
    }

    private let state = Mutex(State())

    init(reuse: Duration = .seconds(1)) {
        self.reuse = reuse
    }

    /// Drops the success being reused: the next probe checks.
    func forgetSuccess() {
        state.withLock { state in
            state.lastReady = nil
            state.forgets += 1
        }
    }

    /// Checks started so far.
    var checksStarted: Int { state.withLock { $0.started } }

    /// Probes waiting for a check, not yet answered.
    var waiting: Int {
        state.withLock { state in state.running.values.reduce(0) { $0 + $1.waiters.filter { !$0.isAnswered }.count } }
    }

    /// The answer of the newest check in flight, or of a new one of `check`, or not ready
    /// once `deadline` has passed.
    func answer(within deadline: Duration, _ check: @escaping Check) async throws(ServiceError) -> Readiness {
        let recent: Readiness? = state.withLock { state in
            guard let last = state.lastReady, ContinuousClock.now - last.at < reuse else { return nil }
            return last.readiness
        }
        if let recent { return recent }
        return try await withCheckedContinuation { (continuation: CheckedContinuation<Result<Readiness, ServiceError>, Never>) in
            let waiter = Waiter(continuation)
            let now = ContinuousClock.now
            let startedID: Int? = state.withLock { state in
                // Probes already answered by their deadline leave the lists as others join.
                for id in state.running.keys { state.running[id]?.waiters.removeAll { $0.isAnswered } }
                // Not a check begun before an outage was seen since (its success is stale).
                if let newest = state.running.keys.max(), let running = state.running[newest],
                   running.forgets == state.forgets && now - running.started < deadline || state.running.count >= Self.maximumInFlight {
                    state.running[newest]?.waiters.append(waiter)
                    return nil
                }
                let id = state.nextID
                state.nextID += 1
                state.started += 1
                state.running[id] = Running(forgets: state.forgets, started: now, waiters: [waiter])
                return id
            }
            if let id = startedID {
                Task {
                    let result = await check()
                    let waiters = state.withLock { state in
                        let running = state.running.removeValue(forKey: id)
                        if case let .success(readiness) = result, running?.forgets == state.forgets {
                            state.lastReady = (ContinuousClock.now, readiness)
                        }
                        return running?.waiters ?? []
                    }
                    for waiter in waiters { waiter.answer(result) }
                }
            }
            waiter.startDeadline(deadline)
        }.get()
    }

    /// One probe waiting: answered once, by its check or its deadline.
    final class Waiter: Sendable {
        private struct State {
            var continuation: CheckedContinuation<Result<Readiness, ServiceError>, Never>?
            var timer: Task<Void, Never>?
        }
        private let state: Mutex<State>

        init(_ continuation: CheckedContinuation<Result<Readiness, ServiceError>, Never>) {
            state = Mutex(State(continuation: continuation))
        }

        var isAnswered: Bool { state.withLock { $0.continuation == nil } }

        func answer(_ result: Result<Readiness, ServiceError>) {
            let (continuation, timer) = state.withLock { state in
                defer { (state.continuation, state.timer) = (nil, nil) }
                return (state.continuation, state.timer)
            }
            timer?.cancel()
            continuation?.resume(returning: result)
        }

        func startDeadline(_ deadline: Duration) {
            let timer = Task { [self] in
                do { try await Task.sleep(for: deadline) } catch { return }  // answered first
                answer(.failure(.notReady("the database did not answer within \(deadline)")))
            }
            let answered = state.withLock { state in
                if state.continuation == nil { return true }
                state.timer = timer
                return false
            }
            if answered { timer.cancel() }
        }
    }
}
