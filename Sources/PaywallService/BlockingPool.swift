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
    let name: String

    init(threads: Int, name: String) {
        threadCount = max(1, threads)
        self.name = name
    }

    deinit {
        shutdown()
    }

    /// Stops the threads once the queued jobs have run; later jobs are refused.
    func shutdown() {
        state.condition.lock()
        state.stopping = true
        state.condition.broadcast()
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
            if !accepted { continuation.resume(returning: .failure(.shuttingDown)) }
        }
        return try result.get()
    }

    private func enqueue(_ job: @escaping @Sendable () -> Void) -> Bool {
        let state = state
        state.condition.lock()
        defer { state.condition.unlock() }
        if state.stopping { return false }
        state.jobs.append(job)
        // Threads start on first use: a CLI run that never awaits starts none.
        if state.started < threadCount, state.started < state.jobs.count - state.head + state.busy {
            state.started += 1
            let threadName = "\(name)-\(state.started)"
            let thread = Thread {
                Thread.current.threadDictionary[BlockingPool.threadKey] = threadName
                BlockingPool.work(state)
            }
            thread.name = threadName
            thread.stackSize = 1 << 20
            thread.start()
        }
        state.condition.signal()
        return true
    }

    private static func work(_ state: State) {
        while true {
            state.condition.lock()
            while state.head == state.jobs.count, !state.stopping { state.condition.wait() }
            if state.head == state.jobs.count {  // stopping and drained
                state.started -= 1
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
