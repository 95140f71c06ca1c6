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

    /// A small deterministic generator (the sequence must be the same on every run).
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("counted from memory, every metered read answers as the queries do (two meters, reads out of order, a store that keeps two readers)")
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
        var random = Generator(state: 42)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var now = start
        let meters: [(window: TimeInterval, limit: Int)] = [(day, 3), (7 * day, 5)]
        var outcomes: [String: Int] = [:]
        for step in 0..<1_500 {
            // Time moves on by up to six hours, sometimes a re-read's minute, and a read may
            // be stamped a little before the last one (checks commit out of order).
            now = now.addingTimeInterval(TimeInterval(Int.random(in: 0...21_600, using: &random)))
            let stamp = now.addingTimeInterval(-TimeInterval(Int.random(in: 0...3, using: &random)))
            let subject = MeterSubject.device("d\(Int.random(in: 0..<6, using: &random))")
            let title = Bool.random(using: &random) ? "euronews" : "the-daily"
            let article = "a\(Int.random(in: 0..<12, using: &random))"
            let meter = meters[Int.random(in: 0..<meters.count, using: &random)]
            let answers = try fixtures.map { f in
                try f.store.recordCountedRead(read(subject, article, at: stamp, title: title), window: meter.window, limit: meter.limit)
            }
            #expect(answers[1] == answers[0], "step \(step): kept")
            #expect(answers[2] == answers[0], "step \(step): two readers kept")
            outcomes[answers[0].outcome.kind, default: 0] += 1
            if answers.contains(where: { $0 != answers[0] }) { break }
        }
        // Every outcome happened, many times (the sequence tests what it means to).
        #expect(outcomes.count == 3 && outcomes.values.allSatisfy { $0 > 50 }, "\(outcomes)")
        #expect(try queries.store.readCount() == kept.store.readCount())
        // The kept store loaded each reader from the table about once per longer window,
        // not per read; the small one far more often.
        let keptLoads = try state(kept.store).statistics.loads
        let smallLoads = try state(small.store).statistics.loads
        #expect(keptLoads < 300 && smallLoads > keptLoads, "kept \(keptLoads), small \(smallLoads)")
    }

    @Test("a read recorded outside a metered batch (this store's other writes) counts at once")
    func readsWrittenOtherwise() throws {
        let f = try StoreFixture()
        try f.title("euronews")
        let t = f.clock.now()
        let d = MeterSubject.device("d1")
        #expect(try f.store.recordCountedRead(read(d, "a1", at: t), window: day, limit: 2).outcome == .recorded(used: 1))
        try f.store.recordRead(read(d, "a2", at: t.addingTimeInterval(1)))
        let resets = try state(f.store).statistics.resets
        #expect(try f.store.recordCountedRead(read(d, "a3", at: t.addingTimeInterval(2)), window: day, limit: 2).outcome == .exhausted(used: 2))
        #expect(try state(f.store).statistics.resets == resets + 1, "forgotten once, at the next batch")
    }

    @Test("another connection's reads (another process, another store on the file) count at once")
    func readsOfAnotherConnection() throws {
        let f = try StoreFixture()
        try f.title("euronews")
        let other = try f.reopen()
        defer { try? other.close() }
        let t = f.clock.now()
        let d = MeterSubject.device("d1")
        #expect(try f.store.recordCountedRead(read(d, "a1", at: t), window: day, limit: 2).outcome == .recorded(used: 1))
        #expect(try other.recordCountedRead(read(d, "a2", at: t.addingTimeInterval(1)), window: day, limit: 2).outcome == .recorded(used: 2))
        #expect(try f.store.recordCountedRead(read(d, "a3", at: t.addingTimeInterval(2)), window: day, limit: 2).outcome == .exhausted(used: 2))
        // And the other way round: this store's re-read is seen there.
        #expect(try other.recordCountedRead(read(d, "a1", at: t.addingTimeInterval(3)), window: day, limit: 2).outcome == .reread)
    }

    @Test("a device's reads moved to the account it signed up with count on the account's meter")
    func movedReads() throws {
        let f = try StoreFixture()
        try f.title("euronews")
        let account = try f.account("reader@example.com")
        let t = f.clock.now()
        let subject = MeterSubject.account(account.id)
        #expect(try f.store.recordCountedRead(read(subject, "a1", at: t), window: day, limit: 2).outcome == .recorded(used: 1))
        try f.store.recordRead(read(.device("dev"), "a2", at: t.addingTimeInterval(1)))
        #expect(try f.store.moveDeviceReads(device: "dev", to: account.id, actor: f.admin) == 1)
        #expect(try f.store.recordCountedRead(read(subject, "a3", at: t.addingTimeInterval(2)), window: day, limit: 2).outcome == .exhausted(used: 2))
        #expect(try f.store.recordCountedRead(read(subject, "a2", at: t.addingTimeInterval(3)), window: day, limit: 2).outcome == .reread)
    }

    @Test("a metered batch whose transaction fails is forgotten: its reads were rolled back")
    func failedBatch() throws {
        let f = try StoreFixture()
        try f.title("euronews")
        let t = f.clock.now()
        let d = MeterSubject.device("d1")
        #expect(try f.store.recordCountedRead(read(d, "a1", at: t), window: day, limit: 2).outcome == .recorded(used: 1))
        let state = try state(f.store)
        struct Refused: Error {}
        // A batch that counts and records a read, then fails before its commit.
        #expect(throws: Refused.self) {
            try f.store.sqlite.meteredWrite(subjects: [d.key]) { db in
                try state.beginBatch(db)
                _ = try Store.meteredRead(db, read(d, "a2", at: t.addingTimeInterval(1)), window: day, limit: 2, state: state)
                throw Refused()
            }
        }
        #expect(state.statistics.readers == 0, "forgotten at the rollback")
        // The rolled-back read is not counted: the meter still has its second unit.
        #expect(try f.store.recordCountedRead(read(d, "a3", at: t.addingTimeInterval(2)), window: day, limit: 2).outcome == .recorded(used: 2))
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
