import Foundation
import GRDB
import Metrics
import PaywallCore
import Synchronization

/// SQLite only: each recently metered reader's counted articles, kept by the writer, so
/// that a metered read's check (is this article counted already, how many are, which
/// leaves the window first) costs no query.
///
/// Why: those two queries were a third of the writer's time per metered read, about 14 µs
/// of a check's CPU on this machine (BENCHMARKS.md, "the writer's meter state").
///
/// Exact because SQLite has one writer: every metered read is counted inside the write
/// transaction that records it, and what is known here is the committed state of the
/// `reads` table as that one writer connection left it. It is forgotten whole when that
/// may no longer hold:
/// - another connection committed (`PRAGMA data_version`, read at each batch's start
///   inside its write transaction, so nothing can commit between the check and the batch);
/// - this connection changed `reads` outside a metered batch (a device's reads moved to an
///   account, an account erased): a GRDB transaction observer sees every such row;
/// - a batch's transaction failed (what it recorded here was rolled back).
final class SQLiteMeterState: TransactionObserver, Sendable {
    /// A title's article, compared and hashed byte by byte as SQLite's `=` and `GROUP BY`
    /// compare text (`String.hasSameBytes(as:)`): as `String`s an id written precomposed
    /// and decomposed would be one article, which the table counts as two (a reader would
    /// read one free).
    struct ArticleKey: Hashable, Sendable {
        let title: String
        let article: String

        static func == (a: ArticleKey, b: ArticleKey) -> Bool {
            a.title.hasSameBytes(as: b.title) && a.article.hasSameBytes(as: b.article)
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(bytesOf: title)
            hasher.combine(bytesOf: article)
        }
    }

    /// One reader's reads made after `horizon` (milliseconds): each article's latest.
    struct Reader: Sendable {
        var horizon: Int64
        var latest: [ArticleKey: Int64]
    }

    /// A metered read's facts: when this article was last read in the window (nil: it is
    /// not counted), how many articles are counted, and when the counted read that leaves
    /// the window first was made (nil when none is).
    struct Facts {
        var latestOfArticle: Int64?
        var used: Int
        var oldest: Int64?
    }

    private struct State: ~Copyable {
        var readers: Generations<String, Reader>
        /// `PRAGMA data_version` as the last batch began (nil before the first). The batch's
        /// own commit leaves it as it is: it changes only for other connections' commits.
        var dataVersion: Int64?
        /// Whether `reads` changed outside a metered batch since the last one.
        var foreignChange = false
        var inBatch = false
        /// Counters for tests: readers loaded from the table, times forgotten whole, and
        /// entries that let go of articles out of every window.
        var loads = 0
        var resets = 0
        var prunes = 0
    }

    private let state: Mutex<State>

    /// `capacity`: readers kept (the least recently metered go first).
    init(capacity: Int) {
        state = Mutex(State(readers: Generations(capacity: capacity)))
    }

    // MARK: The batch

    /// Called first in a metered batch's write transaction: forgets everything if another
    /// connection committed or `reads` changed outside a batch since the last one.
    func beginBatch(_ db: any SQLConnection) throws {
        let version = try db.fetchValue(Int64.self, "PRAGMA data_version", [])
        let dropped = state.withLock { state in
            // A batch still open: its end was never seen (SQLite rolled it back by itself
            // after an I/O error, and GRDB tells observers nothing then).
            let stale = state.foreignChange || state.inBatch || version != state.dataVersion
            state.foreignChange = false
            state.dataVersion = version
            state.inBatch = true
            return stale ? Self.reset(&state) : nil
        }
        _ = dropped  // released here, outside the lock
    }

    /// Called after a batch's write failed: forgets everything (its reads were rolled
    /// back, or may have been). The batch itself ends at its commit or rollback (below):
    /// on the writer, before any other transaction can begin and change `reads`.
    func batchFailed() {
        let dropped = state.withLock { state in
            // Until now a change on this connection may have been taken for the batch's
            // own: the next batch begins afresh too.
            state.inBatch = false
            state.foreignChange = true
            return Self.reset(&state)
        }
        _ = dropped
    }

    /// Forgets every reader; returns them, to be released outside the lock.
    private static func reset(_ state: inout State) -> (young: [String: Reader], old: [String: Reader]) {
        if state.readers.count > 0 {
            state.resets += 1
            MeterStateMetrics.resets.increment()
            MeterStateMetrics.readers.record(0)
        }
        return state.readers.removeAll()
    }

    // MARK: Reads

    /// The facts of `subject` reading `article` with a window starting after `start`.
    /// `load` reads the reader's articles read after `start` from the table (each with its
    /// latest read) when they are not known that far back.
    func facts(subject: String, after start: Int64, title: String, article: String, load: () throws -> [(ArticleKey, Int64)]) throws -> Facts {
        var dropped: [String: Reader] = [:]
        let known: Reader? = state.withLock { state in
            state.readers.value(for: subject, if: { $0.horizon <= start }, dropped: &dropped)
        }
        dropped = [:]
        var reader: Reader
        var store = false
        if let known {
            reader = known
        } else {
            var latest: [ArticleKey: Int64] = [:]
            for (key, at) in try load() { latest[key] = max(at, latest[key] ?? .min) }
            reader = Reader(horizon: start, latest: latest)
            store = true
        }
        var used = 0
        var oldest: Int64?
        for (_, at) in reader.latest where at > start {
            used += 1
            if oldest.map({ at < $0 }) ?? true { oldest = at }
        }
        // Articles whose latest read has left the window are let go once they are many and
        // most of the entry, so an entry stays about the size of its meter. (Not sooner: a
        // policy's longer meter would then load the reader again each time.)
        let stale = reader.latest.count - used
        if stale > Self.staleKept, stale > used {
            reader.latest = reader.latest.filter { $0.value > start }
            reader.horizon = start
            store = true
        }
        if store {
            let dropped = state.withLock { state in
                if known == nil {
                    state.loads += 1
                    MeterStateMetrics.loads.increment()
                } else {
                    state.prunes += 1
                }
                defer { MeterStateMetrics.readers.record(state.readers.count) }
                return state.readers.insert(subject, reader)
            }
            _ = dropped  // a generation turned out: released here, outside the lock
        }
        let key = ArticleKey(title: title, article: article)
        return Facts(latestOfArticle: reader.latest[key].flatMap { $0 > start ? $0 : nil }, used: used, oldest: oldest)
    }

    /// Articles out of every window kept in a reader's entry before they are let go.
    static let staleKept = 64

    /// Records that `subject` read `article` at `at` (inserted in the batch's transaction):
    /// known only if the reader is, and only if `at` is after what is known of it.
    func recorded(subject: String, title: String, article: String, at: Int64) {
        var dropped: [String: Reader] = [:]
        state.withLock { state in
            // Taken out and put back: changed while the map still held it, its articles
            // would be copied whole.
            guard var reader = state.readers.removeValue(forKey: subject) else { return }
            let key = ArticleKey(title: title, article: article)
            if at > reader.horizon, (reader.latest[key] ?? .min) < at { reader.latest[key] = at }
            dropped = state.readers.insert(subject, reader)
        }
    }

    /// When the counted read that leaves the window after `start` first was made.
    /// Nil when none is, or when the reader is not known (the caller then asks the table).
    func oldest(subject: String, after start: Int64) -> Int64? {
        var dropped: [String: Reader] = [:]
        return state.withLock { state in
            guard let reader = state.readers.value(for: subject, dropped: &dropped) else { return nil }
            return reader.latest.values.filter { $0 > start }.min()
        }
    }

    /// Readers loaded from the table, times everything was forgotten, entries pruned, and
    /// readers known now (tests).
    var statistics: (loads: Int, resets: Int, prunes: Int, readers: Int) {
        state.withLock { ($0.loads, $0.resets, $0.prunes, $0.readers.count) }
    }

    // MARK: TransactionObserver

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        eventKind.tableName == "reads"
    }

    func databaseDidChange(with event: DatabaseEvent) {
        noteChange()
    }

    func databaseDidChange() {
        noteChange()
    }

    private func noteChange() {
        state.withLock { state in
            if !state.inBatch { state.foreignChange = true }
        }
        // One event says all there is to know of this transaction: a batch's own inserts
        // are recorded by the batch, and one foreign change forgets everything.
        stopObservingDatabaseChangesUntilNextTransaction()
    }

    func databaseDidCommit(_ db: Database) {
        state.withLock { $0.inBatch = false }
    }

    func databaseDidRollback(_ db: Database) {
        let dropped = state.withLock { state in
            defer { state.inBatch = false }
            return state.inBatch ? Self.reset(&state) : nil
        }
        _ = dropped
    }
}

/// What `/metrics` shows of the writer's meter state: readers kept now, readers loaded
/// from the table (each a metered read the map could not answer), and times it was
/// forgotten whole (another process wrote, or something else changed the reads). Loads
/// near the metered reads committed mean the map is too small for the readers
/// (`PAYWALL_METER_STATE`), or forgotten too often. Made on first use, after the server
/// set up its metrics.
enum MeterStateMetrics {
    static let readers = Gauge(label: "paywall_meter_state_readers")
    static let loads = Counter(label: "paywall_meter_state_loads_total")
    static let resets = Counter(label: "paywall_meter_state_resets_total")
}
