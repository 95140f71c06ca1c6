import Foundation
import GRDB
import Metrics
import PaywallCore

/// Commits concurrent metered reads together: one write transaction (one fsync with
/// `synchronous = FULL`) for every read waiting when the previous commit ends.
///
/// Why: a durable commit costs one fsync, about 130–240 µs here (BENCHMARKS.md, "record a
/// read"), so one transaction per read caps a server at 4–7 thousand metered checks a
/// second whatever its CPU. Reads queue up here; a committer thread takes everything
/// waiting (up to ``maximumBatch``) and runs it in one transaction. Each read is still
/// checked and inserted in order inside that transaction, so the meter's last unit stays
/// exact, and each caller is answered only after the commit that holds its read (nothing
/// acknowledged can be lost). A read that fails (an unknown title) fails alone (on
/// PostgreSQL in a savepoint of its own).
///
/// One committer by default. On PostgreSQL up to ``committers`` may run (a second starts
/// only while every running one is in its transaction): there the meter stays exact
/// between concurrent batches, as between servers, because each batch takes its readers'
/// advisory locks in one order before counting (`StoreConfiguration.meterCommitters`).
///
/// Why a thread of its own rather than the caller's: an async caller (an HTTP access
/// check) suspends instead of holding a thread while it waits, and nobody is woken but the
/// callers whose reads committed. The first version let each caller wait on a pool thread
/// and woke them all after every commit; `perf` showed a third of a metered check's CPU in
/// those hops and wake-ups (BENCHMARKS.md, HTTP API).
final class GroupCommit: @unchecked Sendable {
    typealias Outcome = Result<Store.CountedRead, StoreError>

    /// One waiting read, and who to tell its outcome once its batch committed.
    struct Pending: Sendable {
        let read: ArticleRead
        let window: TimeInterval
        let limit: Int
        let deliver: @Sendable (Outcome) -> Void
    }

    private let condition = NSCondition()
    private var queue: [Pending] = []
    /// Committer threads running (each ends after ``idleTimeout`` without work), and how
    /// many of them are in a transaction now.
    private var running = 0
    private var busy = 0
    private var closed = false
    /// Batches committed and reads in them (for tests and benchmarks).
    private var batches = 0
    private var reads = 0

    /// At most this many reads in one transaction (bounds the time the write lock is held).
    let maximumBatch: Int
    /// How long a committer thread waits for more work before it ends.
    let idleTimeout: TimeInterval
    /// At most this many transactions in flight at once: a second committer starts only
    /// when reads arrive while every running one is in a transaction.
    let committers: Int

    init(maximumBatch: Int = 256, idleTimeout: TimeInterval = 2, committers: Int = 1) {
        self.maximumBatch = max(1, maximumBatch)
        self.idleTimeout = idleTimeout
        self.committers = max(1, committers)
    }

    /// Queues `pending`; its `deliver` is called on the committer thread once the
    /// transaction holding it has committed (or failed). `commit` runs a batch in one
    /// transaction and returns an outcome per read; the thread it starts keeps it (and what
    /// it captures) until the thread ends or ``close()``.
    func enqueue(_ pending: Pending, commit: @escaping @Sendable ([Pending]) -> [Outcome], closedError: @autoclosure () -> StoreError) {
        condition.lock()
        if closed {
            condition.unlock()
            pending.deliver(.failure(closedError()))
            return
        }
        queue.append(pending)
        // A thread waiting for work takes it; otherwise another committer, if allowed.
        let start = running == busy && running < committers
        if start { running += 1 }
        condition.signal()
        condition.unlock()
        if start {
            Thread.startNamed("paywall-commit") { [self] in run(commit) }
        }
    }

    /// The committer: batches until the queue stays empty for ``idleTimeout`` (or the
    /// store closes and the queue is drained).
    private func run(_ commit: @Sendable ([Pending]) -> [Outcome]) {
        condition.lock()
        while true {
            if queue.isEmpty {
                if closed { break }
                if !condition.wait(until: Date().addingTimeInterval(idleTimeout)), queue.isEmpty { break }
                continue
            }
            let batch = Array(queue.prefix(maximumBatch))
            queue.removeFirst(batch.count)
            busy += 1
            condition.unlock()
            let start = DispatchTime.now().uptimeNanoseconds
            let outcomes = commit(batch)
            CommitMetrics.duration.recordNanoseconds(Int64(clamping: DispatchTime.now().uptimeNanoseconds &- start))
            CommitMetrics.reads.record(batch.count)
            condition.lock()
            busy -= 1
            batches += 1
            reads += batch.count
            condition.unlock()
            // An outcome per read, or a caller would wait for ever (its continuation is
            // unchecked: nothing would say so).
            precondition(outcomes.count == batch.count, "a batch of \(batch.count) metered reads committed with \(outcomes.count) outcomes")
            for (item, outcome) in zip(batch, outcomes) { item.deliver(outcome) }
            condition.lock()
        }
        running -= 1
        condition.broadcast()  // close() waits for this
        condition.unlock()
    }

    /// Blocks until `pending` is committed: for synchronous callers (the CLI, tests).
    func submit(
        read: ArticleRead, window: TimeInterval, limit: Int, commit: @escaping @Sendable ([Pending]) -> [Outcome], closedError: @autoclosure () -> StoreError
    ) -> Outcome {
        let box = OutcomeBox()
        enqueue(Pending(read: read, window: window, limit: limit, deliver: { box.set($0) }), commit: commit, closedError: closedError())
        return box.wait()
    }

    /// Reads waiting for a transaction now.
    var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count
    }

    /// Transactions in flight now.
    var inFlight: Int {
        condition.lock()
        defer { condition.unlock() }
        return busy
    }

    var statistics: (batches: Int, reads: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (batches, reads)
    }

    /// Refuses new reads, commits those queued, and returns once the committer has ended.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }
}

/// One outcome handed from the committer thread to a caller blocked on it.
private final class OutcomeBox: @unchecked Sendable {
    private let condition = NSCondition()
    private var outcome: GroupCommit.Outcome?

    func set(_ value: GroupCommit.Outcome) {
        condition.lock()
        outcome = value
        condition.signal()
        condition.unlock()
    }

    func wait() -> GroupCommit.Outcome {
        condition.lock()
        defer { condition.unlock() }
        while outcome == nil { condition.wait() }
        return outcome ?? .failure(.sqlite(path: "?", code: -1, message: "no outcome", sql: nil))
    }
}

/// What `/metrics` shows of the group commit (per batch, not per read): how long each
/// transaction took and how many reads it held. A metered p99 far above the batch time is
/// the queue of a saturated server; batch times growing is the database (BENCHMARKS.md,
/// "Where the metered p99 on PostgreSQL comes from"). Made on first use, after the server
/// set up its metrics.
enum CommitMetrics {
    static let duration = Metrics.Timer(label: "paywall.meter.commit.duration", preferredDisplayUnit: .seconds)
    static let reads = Recorder(label: "paywall_meter_commit_reads", aggregate: true)
}
