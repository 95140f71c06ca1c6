import Foundation
import Synchronization

/// What a SQLite server has read of the facts change log (`facts_changes`, appended by the
/// triggers of migration `v13-facts-changes`), and the reading itself: SQLite has no
/// notifications, and the CLI (another process) writes the same file.
///
/// When: after each of the server's own writes, on the writer inside the write transaction
/// (so its own change has left the cache when the write returns), and before a check's
/// cached facts at most every ``interval``. Measured (BENCHMARKS.md, HTTP API): reading the
/// log on every check cost a reader and a statement each, most of what the cache saves;
/// once a millisecond is a statement per thirty checks at 30,000 a second.
final class SQLiteFactsChanges: Sendable {
    private struct State {
        /// The last change applied (ids only grow: AUTOINCREMENT).
        var lastSeen: Int64 = 0
        var lastRead: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    let facts: FactsCache
    let interval: Duration

    /// Rows read at once; past that (a bulk change) the whole cache goes.
    static let batch = 500

    static let newSQL = "SELECT id, payload FROM facts_changes WHERE id > ? ORDER BY id LIMIT \(batch)"
    static let lastSQL = "SELECT COALESCE(MAX(id), 0) FROM facts_changes"

    init(facts: FactsCache, interval: Duration = .milliseconds(1)) {
        self.facts = facts
        self.interval = interval
    }

    /// Starts from the log's end (the cache starts empty) and turns the cache on.
    func start(_ connection: any SQLConnection) throws {
        let last = try connection.fetchValue(Int64.self, Self.lastSQL) ?? 0
        state.withLock { $0.lastSeen = last; $0.lastRead = ContinuousClock.now }
        facts.setEnabled(true)
    }

    /// Whether the log is due to be read (and marks it read now, so one caller reads it).
    func isDue() -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            if let last = state.lastRead, now - last < interval { return false }
            state.lastRead = now
            return true
        }
    }

    /// The log could not be read: the next caller reads it (and the cache is not used meanwhile
    /// by the caller that failed).
    func readFailed() {
        state.withLock { $0.lastRead = nil }
    }

    /// The changes after the last one applied, read on `connection` (not yet applied).
    func pending(_ connection: any SQLConnection) throws -> [(id: Int64, payload: String)] {
        let after = state.withLock { $0.lastSeen }
        return try connection.fetchAll(Self.newSQL, [after]).map { row in (row[0], row[1]) }
    }

    /// Drops what `changes` name from the cache (everything, when the batch was full).
    func apply(_ changes: [(id: Int64, payload: String)]) {
        guard let last = changes.last?.id else { return }
        if changes.count >= Self.batch {
            facts.invalidate("catalog")  // everything goes; the rest is read at the next check
        } else {
            for change in changes { facts.invalidate(change.payload) }
        }
        state.withLock { state in
            if changes.count >= Self.batch {
                state.lastRead = nil  // read the rest at once
            }
            state.lastSeen = max(state.lastSeen, last)
        }
    }
}
