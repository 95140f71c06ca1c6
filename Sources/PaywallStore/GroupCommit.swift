import Foundation
import GRDB
import PaywallCore

/// Commits concurrent metered reads together: one write transaction (one fsync with
/// `synchronous = FULL`) for every read waiting when the previous commit ends.
///
/// Why: a durable commit costs one fsync, about 130–240 µs here (BENCHMARKS.md, "record a
/// read"), so one transaction per read caps a server at 4–7 thousand metered checks a
/// second whatever its CPU. Readers that arrive while a commit is in flight queue up; the
/// first of them becomes the next leader and runs them all in one transaction. Each read
/// is still checked and inserted in order inside that transaction, so the meter's last
/// unit stays exact, and each caller is answered only after the commit that holds its
/// read (nothing acknowledged can be lost). A read that fails (an unknown title) fails
/// alone: it runs in a savepoint of its own.
final class GroupCommit: @unchecked Sendable {
    /// One waiting read and, once its batch committed, its outcome.
    final class Pending {
        let read: ArticleRead
        let window: TimeInterval
        let limit: Int
        var result: Result<Store.MeteredRead, StoreError>?
        init(read: ArticleRead, window: TimeInterval, limit: Int) {
            self.read = read
            self.window = window
            self.limit = limit
        }
    }

    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var leading = false
    /// Batches committed and reads in them (for tests and benchmarks).
    private(set) var batches = 0
    private(set) var reads = 0
    /// At most this many reads in one transaction (bounds the time a lock is held).
    let maximumBatch: Int

    init(maximumBatch: Int = 256) {
        self.maximumBatch = max(1, maximumBatch)
    }

    /// Queues `pending`, and either leads a batch or waits for the leader to commit it.
    /// `commit` returns one outcome per read of the batch; they are handed out under the
    /// lock the followers read them under.
    func submit(_ pending: Pending, commit: ([Pending]) -> [Result<Store.MeteredRead, StoreError>]) -> Result<Store.MeteredRead, StoreError> {
        condition.lock()
        queue.append(pending)
        while pending.result == nil {
            if leading {
                condition.wait()
                continue
            }
            leading = true
            let batch = Array(queue.prefix(maximumBatch))
            queue.removeFirst(batch.count)
            condition.unlock()
            let outcomes = commit(batch)
            condition.lock()
            for (item, outcome) in zip(batch, outcomes) { item.result = outcome }
            batches += 1
            reads += batch.count
            leading = false
            condition.broadcast()
        }
        condition.unlock()
        return pending.result ?? .failure(.sqlite(path: "?", code: -1, message: "no result", sql: nil))
    }

    var statistics: (batches: Int, reads: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (batches, reads)
    }
}
