import Foundation
import GRDB
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

/// The SQLite writer's meter state (``SQLiteMeterState``): a metered read counted from
/// memory must answer exactly as the queries do, and be forgotten whenever `reads` changed
/// some other way.
@Suite("The SQLite writer's meter state")
struct MeterStateTests {
    let day: TimeInterval = 86_400

    func read(_ subject: MeterSubject, _ article: String, at: Date, title: String = "euronews") -> ArticleRead {
        ArticleRead(subject: subject, titleID: TitleID(rawValue: title), articleID: article, at: at)
    }

    func state(_ store: Store) throws -> SQLiteMeterState {
        try #require(store.sqlite.meterState)
    }

    /// A fresh SQLite store with the title every read here is of.
    func fixture(_ configure: (inout StoreConfiguration) -> Void = { _ in }) throws -> StoreFixture {
        let f = try StoreFixture(configure: configure)
        try f.title("euronews")
        return f
    }

    /// A metered read through `store` (the fixture's own by default), `offset` seconds after
    /// the fixture's start, under a daily meter of `limit`: its outcome.
    func metered(
        _ f: StoreFixture, _ subject: MeterSubject, _ article: String, _ offset: TimeInterval = 0, limit: Int = 2, through store: Store? = nil
    ) throws -> Store.MeteredRead {
        try (store ?? f.store).recordCountedRead(read(subject, article, at: f.clock.now().addingTimeInterval(offset)), window: day, limit: limit).outcome
    }

    @Test("counted from memory, every metered read answers as the queries do (three meters, re-reads soon and late, reads stamped out of order, an unknown title, a store that keeps two readers)")
    func sameAnswers() throws {
        // The same reads into three stores: one counting with queries only, one keeping
        // every reader, one keeping two (readers dropped and loaded again all the time).
        let queries = try StoreFixture { $0.meterStateCapacity = 0 }
        let kept = try StoreFixture()
        let small = try StoreFixture { $0.meterStateCapacity = 2 }
        let fixtures = [queries, kept, small]
        for f in fixtures {
            try f.title("euronews")
            try f.title("the-daily")
        }
        #expect(queries.store.sqlite.meterState == nil)
        var random = SplitMix64(state: 42)
        var now = Date(timeIntervalSince1970: 1_800_000_000)
        // A generous monthly meter lets entries grow past what is kept of articles out of
        // every window (so they are pruned), and the shorter ones then load them again.
        let meters: [(window: TimeInterval, limit: Int)] = [(day, 3), (7 * day, 8), (30 * day, 120)]
        var tally: [String: Int] = [:]
        var last: (subject: MeterSubject, title: String, article: String)?
        for step in 0..<3_000 {
            let subject: MeterSubject, title: String, article: String
            if let previous = last, Int.random(in: 0..<5, using: &random) == 0 {
                // The same article again: within the quiet minute (nothing written) or after.
                (subject, title, article) = previous
                now = now.addingTimeInterval(TimeInterval(Int.random(in: 0...120, using: &random)))
            } else {
                subject = .device("d\(Int.random(in: 0..<4, using: &random))")
                title = Int.random(in: 0..<40, using: &random) == 0 ? "nope" : (Bool.random(using: &random) ? "euronews" : "the-daily")
                article = "a\(Int.random(in: 0..<200, using: &random))"
                now = now.addingTimeInterval(TimeInterval(Int.random(in: 0...7_200, using: &random)))
            }
            last = (subject, title, article)
            // Checks commit out of order by moments; now and then one is stamped days back.
            let back = Int.random(in: 0..<30, using: &random) == 0 ? Int.random(in: 0...(3 * 86_400), using: &random) : Int.random(in: 0...3, using: &random)
            let stamp = now.addingTimeInterval(-TimeInterval(back))
            let meter = meters[Int.random(in: 0..<meters.count, using: &random)]
            let rowsBefore = try queries.store.readCount()
            let answers = fixtures.map { f in
                Result { () throws(StoreError) -> Store.CountedRead in
                    try f.store.recordCountedRead(read(subject, article, at: stamp, title: title), window: meter.window, limit: meter.limit)
                }
            }
            #expect(answers[1] == answers[0], "step \(step): kept")
            #expect(answers[2] == answers[0], "step \(step): two readers kept")
            switch answers[0] {
            case let .success(counted):
                let rowsAfter = try queries.store.readCount()
                let quiet = counted.outcome == .reread && rowsAfter == rowsBefore
                tally[quiet ? "quiet re-read" : counted.outcome.kind, default: 0] += 1
            case .failure(.titleNotFound): tally["unknown title", default: 0] += 1
            case let .failure(error): Issue.record("step \(step): \(error)")
            }
            if answers.contains(where: { $0 != answers[0] }) { break }
        }
        // Every case happened, many times (the sequence tests what it means to).
        for kind in ["recorded", "reread", "quiet re-read", "exhausted", "unknown title"] {
            #expect(tally[kind, default: 0] >= 20, "\(kind): \(tally)")
        }
        #expect(try queries.store.readCount() == kept.store.readCount())
        #expect(try queries.store.readCount() == small.store.readCount())
        // The kept store loaded readers from the table far less often than the small one,
        // and pruned entries that grew past what is kept of articles out of every window.
        let keptState = try state(kept.store).statistics
        let smallState = try state(small.store).statistics
        #expect(keptState.loads < 1_000 && smallState.loads > keptState.loads, "kept \(keptState), small \(smallState)")
        #expect(keptState.prunes > 0, "\(keptState)")
    }

    @Test("a read recorded outside a metered batch (this store's other writes) counts at once")
    func readsWrittenOtherwise() throws {
        let f = try fixture()
        let d = MeterSubject.device("d1")
        #expect(try metered(f, d, "a1") == .recorded(used: 1))
        try f.store.recordRead(read(d, "a2", at: f.clock.now().addingTimeInterval(1)))
        let resets = try state(f.store).statistics.resets
        #expect(try metered(f, d, "a3", 2) == .exhausted(used: 2))
        #expect(try state(f.store).statistics.resets == resets + 1, "forgotten once, at the next batch")
    }

    @Test("another connection's reads (another process, another store on the file) count at once, both ways")
    func readsOfAnotherConnection() throws {
        let f = try fixture()
        let other = try f.reopen()
        defer { try? other.close() }
        let d = MeterSubject.device("d1")
        #expect(try metered(f, d, "a1", 0, limit: 3) == .recorded(used: 1))
        #expect(try metered(f, d, "a2", 1, limit: 3, through: other) == .recorded(used: 2), "the other store loads the reader: a1 and its own a2")
        #expect(try metered(f, d, "a3", 2, limit: 3) == .recorded(used: 3), "this store knew a1 only: it must see a2")
        #expect(try metered(f, d, "a4", 3, limit: 3, through: other) == .exhausted(used: 3), "the other store knew a1 and a2: it must see a3")
        #expect(try f.store.readCount() == 3)
    }

    @Test("a device's reads moved to the account it signed up with count on the account's meter")
    func movedReads() throws {
        let f = try fixture()
        let account = try f.account("reader@example.com")
        let subject = MeterSubject.account(account.id)
        #expect(try metered(f, subject, "a1") == .recorded(used: 1))
        // The device's read through a metered batch too: only the move itself changes
        // `reads` outside one.
        #expect(try metered(f, .device("dev"), "a2", 1) == .recorded(used: 1))
        let resets = try state(f.store).statistics.resets
        #expect(try f.store.moveDeviceReads(device: "dev", to: account.id, actor: f.admin) == 1)
        #expect(try metered(f, subject, "a3", 2) == .exhausted(used: 2))
        #expect(try metered(f, subject, "a2", 3) == .reread)
        #expect(try state(f.store).statistics.resets == resets + 1)
    }

    @Test("an erased account's reads are no longer its own: a metered read for it is refused, not counted from memory")
    func erasedAccount() throws {
        let f = try fixture()
        let account = try f.account("reader@example.com")
        let subject = MeterSubject.account(account.id)
        #expect(try metered(f, subject, "a1", limit: 1) == .recorded(used: 1))
        #expect(try f.store.deleteAccount(id: account.id, actor: f.admin) == nil)
        // Counted from memory the meter would be full (an answer, and no insert to refuse
        // it); the table has no read of the account now, so its insert is tried and refused.
        #expect(throws: StoreError.accountNotFound(account.id.rawValue)) { _ = try metered(f, subject, "a2", 1, limit: 1) }
        // Its one read stays, under the deletion's pseudonym; none is the account's.
        #expect(try f.store.readCount() == 1)
        #expect(try f.store.reads(subject: subject, limit: 10).isEmpty)
    }

    @Test("article ids are told apart byte by byte, as the table does: \"café\" precomposed and decomposed are two articles")
    func articleIdsByBytes() throws {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed, "equal as Swift strings")
        for f in [try fixture { $0.meterStateCapacity = 0 }, try fixture()] {
            let d = MeterSubject.device("d1")
            #expect(try metered(f, d, composed, limit: 3) == .recorded(used: 1))
            #expect(try metered(f, d, decomposed, 120, limit: 3) == .recorded(used: 2))
            #expect(try metered(f, d, "other", 240, limit: 3) == .recorded(used: 3))
            #expect(try metered(f, d, "more", 360, limit: 3) == .exhausted(used: 3))
        }
    }

    @Test("a batch that cannot begin (the file locked by another process) forgets what it knew, and the next counts from the table")
    func lockedBatch() throws {
        let f = try fixture { $0.busyTimeout = 0.2 }
        let d = MeterSubject.device("d1")
        #expect(try metered(f, d, "a1") == .recorded(used: 1))
        let state = try state(f.store)
        #expect(state.statistics.readers == 1)
        let locker = try LockHolder(path: f.path)
        #expect(throws: StoreError.self) { _ = try metered(f, d, "a2", 1) }
        #expect(state.statistics.readers == 0, "forgotten")
        locker.release()
        // Another connection records a read meanwhile.
        let other = try DatabaseQueue(path: f.path)
        try other.write { db in
            try db.execute(sql: "INSERT INTO reads (subject, title_id, article_id, read_at) VALUES (?, 'euronews', 'a3', ?)", arguments: [d.key, f.clock.now().addingTimeInterval(2).millis])
        }
        try other.close()
        #expect(try metered(f, d, "a4", 3) == .exhausted(used: 2))
    }

    @Test("a metered batch whose transaction fails is forgotten: its reads were rolled back")
    func failedBatch() throws {
        let f = try fixture()
        let d = MeterSubject.device("d1")
        #expect(try metered(f, d, "a1") == .recorded(used: 1))
        struct Refused: Error {}
        // A batch that counts and records a read, then fails before its commit.
        #expect(throws: Refused.self) {
            try f.store.sqlite.meteredReadBatch(subjects: [d.key]) { db, state in
                _ = try Store.meteredRead(db, read(d, "a2", at: f.clock.now().addingTimeInterval(1)), window: day, limit: 2, state: state)
                throw Refused()
            }
        }
        #expect(try state(f.store).statistics.readers == 0, "forgotten")
        // The rolled-back read is not counted: the meter still has its second unit.
        #expect(try metered(f, d, "a3", 2) == .recorded(used: 2))
        #expect(try f.store.readCount() == 2)
    }

    @Test("a reader's entry lets go of articles out of every window once they are most of it")
    func staleArticlesLetGo() throws {
        let state = SQLiteMeterState(capacity: 10)
        let old = (0..<100).map { (SQLiteMeterState.ArticleKey(title: "t", article: "old\($0)"), Int64($0)) }
        let live = (0..<3).map { (SQLiteMeterState.ArticleKey(title: "t", article: "new\($0)"), Int64(1_000 + $0)) }
        let facts = try state.facts(subject: "s", after: 0, title: "t", article: "new1") { old + live }
        #expect(facts.used == 102 && facts.latestOfArticle == 1_001 && facts.oldest == 1)
        // Asked with a later window: 97 articles have left it, and are let go.
        let later = try state.facts(subject: "s", after: 500, title: "t", article: "old99") { Issue.record("loaded again"); return [] }
        #expect(later.used == 3 && later.latestOfArticle == nil && later.oldest == 1_000)
        // A longer window than what is kept now loads the reader again.
        var loaded = false
        let longer = try state.facts(subject: "s", after: 50, title: "t", article: "old60") { loaded = true; return old + live }
        #expect(loaded && longer.used == 52 && longer.latestOfArticle == 60)
    }
}

extension Store.MeteredRead {
    /// The outcome without its count (to tally which kinds a test saw).
    var kind: String {
        switch self {
        case .recorded: "recorded"
        case .reread: "reread"
        case .exhausted: "exhausted"
        }
    }
}
