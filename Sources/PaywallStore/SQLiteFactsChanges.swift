import Foundation
import Synchronization

/// What a SQLite server has read of the facts change log (`facts_changes`, appended by the
/// triggers of migration `v13-facts-changes`), and the reading itself: SQLite has no
/// notifications, and the CLI (another process) writes the same file.
///
/// When: after each of the server's own writes (but a batch of metered reads, which writes
/// only `reads`, a table no trigger logs), on the writer inside the write transaction
/// (so its own change has left the cache when the write returns), and before a check's
/// cached facts at most every ``interval``. Measured (BENCHMARKS.md, HTTP API): reading the
/// log on every check cost a reader and a statement each, most of what the cache saves;
/// once a millisecond is a statement per thirty checks at 30,000 a second.
final class SQLiteFactsChanges: Sendable {
    private struct State {
        /// The last change applied (ids only grow: AUTOINCREMENT).
        var lastSeen: Int64 = 0
        /// When the latest read of the log that was applied began. Only a completed read
        /// counts: a read still waiting for a reader must not keep others from reading.
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
        let began = ContinuousClock.now
        let last = try connection.fetchValue(Int64.self, Self.lastSQL) ?? 0
        state.withLock { $0.lastSeen = last; $0.lastRead = began }
        facts.setEnabled(true)
    }

    /// Whether the log is due to be read: no applied read began in the last ``interval``.
    /// Several callers may read it at once; applying twice is harmless.
    func isDue() -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let last = state.lastRead else { return true }
            return now - last >= interval
        }
    }

    /// The changes after the last one applied, read on `connection` (not yet applied), and
    /// when the reading began (for ``apply(_:readAt:)``).
    func pending(_ connection: any SQLConnection) throws -> (changes: [(id: Int64, payload: String)], readAt: ContinuousClock.Instant) {
        let began = ContinuousClock.now
        let after = state.withLock { $0.lastSeen }
        let changes: [(id: Int64, payload: String)] = try connection.fetchAll(Self.newSQL, [after]).map { row in (row[0], row[1]) }
        return (changes, began)
    }

    /// Drops what `changes` name from the cache (everything, when the batch was full), and
    /// notes the read that found them (begun at `readAt`; nil: not known) as applied.
    func apply(_ changes: [(id: Int64, payload: String)], readAt: ContinuousClock.Instant?) {
        let full = changes.count >= Self.batch
        if full {
            facts.invalidate("catalog")  // everything goes; the rest is read at the next check
        } else {
            for change in changes { facts.invalidate(change.payload) }
        }
        state.withLock { state in
            if let last = changes.last?.id { state.lastSeen = max(state.lastSeen, last) }
            if full {
                state.lastRead = nil  // read the rest at once
            } else if let readAt, state.lastRead.map({ $0 < readAt }) ?? true {
                state.lastRead = readAt
            }
        }
    }
}
