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

    /// ``readiness()`` for a probe: answered within `deadline`, and one check at a time.
    ///
    /// Why: against a stalled database the check's write waits until the store gives up
    /// (PostgreSQL: its answer limit, 40 s), so `/readyz` answered nothing for that long,
    /// and each probe meanwhile held a blocking thread of its own. Now a probe that
    /// arrives while a check runs waits for that check, and past `deadline` is answered
    /// not ready (``ServiceError/notReady(_:)``); the check goes on, and the next probe
    /// after it ends starts a new one.
    public func readiness(within deadline: Duration) async throws(ServiceError) -> Readiness {
        let check = readinessProbe.current { [self] () async -> Result<Readiness, ServiceError> in
            do throws(ServiceError) {
                return .success(try await blocking { service throws(ServiceError) in try service.readiness() })
            } catch {
                return .failure(error)
            }
        }
        return try await withCheckedContinuation { (continuation: CheckedContinuation<Result<Readiness, ServiceError>, Never>) in
            let answered = Mutex(false)
            let answer: @Sendable (Result<Readiness, ServiceError>) -> Void = { result in
                guard answered.withLock({ done in defer { done = true }; return !done }) else { return }
                continuation.resume(returning: result)
            }
            Task { answer(await check.value) }
            Task {
                try? await Task.sleep(for: deadline)
                answer(.failure(.notReady("the database did not answer within \(deadline.components.seconds) s")))
            }
        }.get()
    }
}

/// The readiness check in flight, shared by the probes that arrive while it runs.
final class ReadinessProbe: Sendable {
    private let running = Mutex<Task<Result<Readiness, ServiceError>, Never>?>(nil)

    /// The check in flight, or a new one of `body` when none is.
    func current(_ body: @escaping @Sendable () async -> Result<Readiness, ServiceError>) -> Task<Result<Readiness, ServiceError>, Never> {
        running.withLock { current in
            if let task = current { return task }
            let task = Task { [self] in
                let result = await body()
                // Done: the next probe checks again (not this one's answer for ever).
                running.withLock { $0 = nil }
                return result
            }
            current = task
            return task
        }
    }
}
