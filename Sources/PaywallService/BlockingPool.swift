import Foundation

/// A fixed set of threads for work that blocks: SQLite writes that wait for fsync, scrypt
/// (about 0.3 s and 128 MiB each). Swift's cooperative pool has one thread per core; a
/// blocking call there stalls every task scheduled behind it, so the async API hands such
/// work to these threads and suspends until it is done. Jobs run in arrival order; at most
/// `threads` at once, so the pool also bounds how much blocking work is in flight.
final class BlockingPool: Sendable {
    /// Shared by the pool and its threads; the threads keep it alive, not the pool, so the
    /// pool's `deinit` can stop them.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var jobs: [@Sendable () -> Void] = []
        var head = 0
        var stopping = false
        var started = 0
        var busy = 0
        var peakBusy = 0
    }

    private let state = State()
    let threadCount: Int
    /// At most this many jobs wait; past it work is refused (``ServiceError/overloaded``)
    /// instead of piling up in memory behind a stalled disk.
    let queueLimit: Int
    let name: String

    init(threads: Int, queueLimit: Int = 10_000, name: String) {
        threadCount = max(1, threads)
        self.queueLimit = max(1, queueLimit)
        self.name = name
    }

    deinit {
        stop(wait: false)
    }

    /// Refuses new jobs, lets the queued and running ones finish, and returns once every
    /// thread has ended: after it, nothing of the pool touches the store.
    func shutdown() {
        stop(wait: true)
    }

    private func stop(wait: Bool) {
        state.condition.lock()
        state.stopping = true
        state.condition.broadcast()
        if wait {
            while state.started > 0 { state.condition.wait() }
        }
        state.condition.unlock()
    }

    static let threadKey = "paywall.blocking-pool"

    /// The pool thread running the caller, if it is one (Foundation's `Thread.name` is
    /// not reliable on Linux).
    static var currentThread: String? {
        Thread.current.threadDictionary[threadKey] as? String
    }

    /// The most jobs that ran at once (for tests).
    var peakConcurrency: Int {
        state.condition.lock()
        defer { state.condition.unlock() }
        return state.peakBusy
    }

    /// Runs `body` on a pool thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws(ServiceError) -> T) async throws(ServiceError) -> T {
        let result: Result<T, ServiceError> = await withCheckedContinuation { continuation in
            let accepted = enqueue {
                do throws(ServiceError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            if let refusal = accepted { continuation.resume(returning: .failure(refusal)) }
        }
        return try result.get()
    }

    /// Queues `job`; returns why it was refused, if it was.
    private func enqueue(_ job: @escaping @Sendable () -> Void) -> ServiceError? {
        let state = state
        state.condition.lock()
        defer { state.condition.unlock() }
        if state.stopping { return .shuttingDown }
        if state.jobs.count - state.head >= queueLimit { return .overloaded }
        state.jobs.append(job)
        // Threads start on first use: a CLI run that never awaits starts none.
        if state.started < threadCount, state.started < state.jobs.count - state.head + state.busy {
            state.started += 1
            let threadName = "\(name)-\(state.started)"
            Thread.startNamed(threadName, stackSize: 1 << 20) {
                Thread.current.threadDictionary[BlockingPool.threadKey] = threadName
                BlockingPool.work(state)
            }
        }
        state.condition.signal()
        return nil
    }

    private static func work(_ state: State) {
        while true {
            state.condition.lock()
            while state.head == state.jobs.count, !state.stopping { state.condition.wait() }
            if state.head == state.jobs.count {  // stopping and drained
                state.started -= 1
                state.condition.broadcast()  // a shutdown() may be waiting for the last thread
                state.condition.unlock()
                return
            }
            let job = state.jobs[state.head]
            state.head += 1
            if state.head > 1024, state.head * 2 > state.jobs.count {
                state.jobs.removeFirst(state.head)
                state.head = 0
            }
            state.busy += 1
            state.peakBusy = max(state.peakBusy, state.busy)
            state.condition.unlock()
            job()
            state.condition.lock()
            state.busy -= 1
            state.condition.unlock()
        }
    }
}
