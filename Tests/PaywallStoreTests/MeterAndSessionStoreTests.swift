import Foundation
import Synchronization
import PostgresNIO
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

@Suite("Meters and sessions")
struct MeterAndSessionStoreTests {
    let day: TimeInterval = 86_400

    func read(_ f: StoreFixture, _ subject: MeterSubject, _ title: String, _ article: String) throws {
        try f.store.recordRead(ArticleRead(subject: subject, titleID: TitleID(rawValue: title), articleID: article, at: f.clock.now()))
    }

    @Test("a rolling window of distinct articles; re-reads count once", arguments: TestBackend.all)
    func rollingWindow(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        try f.title("the-daily")
        let device = MeterSubject.device("dev-1")
        try read(f, device, "euronews", "a1")
        f.clock.advance(by: 10 * day)
        try read(f, device, "euronews", "a2")
        try read(f, device, "euronews", "a2")
        try read(f, device, "the-daily", "a2")
        #expect(try f.store.meterUsage(subject: device, window: 30 * day).used == 3)
        #expect(try f.store.meterUsage(subject: device, window: 30 * day, title: TitleID(rawValue: "euronews")).used == 2)
        #expect(try f.store.hasRead(subject: device, title: TitleID(rawValue: "euronews"), article: "a2", window: 30 * day))
        #expect(try !f.store.hasRead(subject: device, title: TitleID(rawValue: "euronews"), article: "a3", window: 30 * day))
        // a1 leaves the window 30 days after it was read.
        f.clock.advance(by: 20 * day)
        #expect(try f.store.meterUsage(subject: device, window: 30 * day).used == 2)
        // Another reader's meter is separate.
        #expect(try f.store.meterUsage(subject: .device("dev-2"), window: 30 * day).used == 0)
        #expect(try f.store.readCount() == 4)
    }

    @Test("absurd windows and instants never trap: they count everything, or nothing", arguments: TestBackend.all)
    func absurdWindows(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let device = MeterSubject.device("dev-1")
        try read(f, device, "euronews", "a1")
        for window in [20_000_000_000 * 7 * day, .greatestFiniteMagnitude, .infinity] {
            #expect(try f.store.meterUsage(subject: device, window: window).used == 1)
            #expect(try f.store.hasRead(subject: device, title: TitleID(rawValue: "euronews"), article: "a1", window: window))
            #expect(try f.store.recordCountedRead(
                ArticleRead(subject: device, titleID: TitleID(rawValue: "euronews"), articleID: "a2", at: f.clock.now()), window: window, limit: 1).outcome
                == .exhausted(used: 1))
        }
        #expect(try f.store.meterUsage(subject: device, window: 30 * day, at: .distantFuture).used == 0)
    }

    @Test("a read of an unknown title is refused and writes nothing", arguments: TestBackend.all)
    func unknownTitle(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let before = try f.snapshot()
        #expect(throws: StoreError.titleNotFound("nope")) { try read(f, .device("d"), "nope", "a1") }
        let reads = [
            ArticleRead(subject: .device("d"), titleID: TitleID(rawValue: "euronews"), articleID: "a1", at: f.clock.now()),
            ArticleRead(subject: .device("d"), titleID: TitleID(rawValue: "nope"), articleID: "a2", at: f.clock.now()),
        ]
        #expect(throws: StoreError.titleNotFound("nope")) { try f.store.recordReads(reads) }
        #expect(try f.snapshot() == before)
    }

    @Test("refresh tokens rotate within a family; a reused token revokes the family", arguments: TestBackend.all)
    func rotation(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let first = try f.store.createSession(accountID: account.id, tokenHash: [1], lifetime: 30 * day)
        #expect(try f.store.session(tokenHash: [1]) == first)
        guard case let .rotated(second) = try f.store.rotateSession(tokenHash: [1], newTokenHash: [2], lifetime: 30 * day) else {
            Issue.record("expected a rotation")
            return
        }
        #expect(second.familyID == first.familyID)
        #expect(try f.store.session(tokenHash: [1]) == nil)
        #expect(try f.store.session(tokenHash: [2]) == second)
        // The old token again: theft assumed, the whole family goes.
        #expect(try f.store.rotateSession(tokenHash: [1], newTokenHash: [3], lifetime: 30 * day) == .reuseDetected(familyID: first.familyID))
        #expect(try f.store.session(tokenHash: [2]) == nil)
        #expect(try f.store.rotateSession(tokenHash: [2], newTokenHash: [4], lifetime: 30 * day) == .rejected)
        #expect(try f.store.rotateSession(tokenHash: [9], newTokenHash: [5], lifetime: 30 * day) == .rejected)
    }

    @Test("sessions expire and can be revoked for an account", arguments: TestBackend.all)
    func expiryAndRevocation(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        _ = try f.store.createSession(accountID: account.id, tokenHash: [1], lifetime: day)
        _ = try f.store.createSession(accountID: account.id, tokenHash: [2], lifetime: 2 * day)
        f.clock.advance(by: day)
        #expect(try f.store.session(tokenHash: [1]) == nil)
        #expect(try f.store.rotateSession(tokenHash: [1], newTokenHash: [3], lifetime: day) == .rejected)
        #expect(try f.store.activeSessions(accountID: account.id).count == 1)
        #expect(try f.store.revokeSessions(accountID: account.id, actor: f.admin) == 1)
        #expect(try f.store.session(tokenHash: [2]) == nil)
        #expect(throws: StoreError.accountNotFound("x")) {
            try f.store.createSession(accountID: AccountID(rawValue: "x"), tokenHash: [7], lifetime: day)
        }
    }

    @Test("every way of ending an account's sessions but a device's own sign-out counts once in the account's sign-outs everywhere, which every read of it returns", arguments: TestBackend.all)
    func signOutsEverywhere(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let other = try f.account("bob@example.com")
        func counts() throws -> [Int?] {
            try [f.store.signOutsEverywhere(accountID: account.id), f.store.account(id: account.id)?.signOutsEverywhere,
                 f.store.accountFacts(id: account.id)?.account.signOutsEverywhere, f.store.account(matching: "ada@example.com").signOutsEverywhere]
        }
        #expect(try counts() == [0, 0, 0, 0])
        let one = try f.store.createSession(accountID: account.id, tokenHash: [1], lifetime: day)
        _ = try f.store.revokeSession(id: one.familyID, accountID: account.id, actor: .account(account.id), bySelf: true)
        #expect(try counts() == [0, 0, 0, 0], "a device signing itself out drops its own token")
        let two = try f.store.createSession(accountID: account.id, tokenHash: [2], lifetime: day)
        _ = try f.store.revokeSession(id: two.familyID, accountID: account.id, actor: .account(account.id))
        #expect(try counts() == [1, 1, 1, 1], "a device signed out from another; the cached facts dropped with the change")
        try f.store.revokeSessions(accountID: account.id, actor: f.admin)
        #expect(try counts() == [2, 2, 2, 2], "sign out everywhere")
        try f.store.revokeSessions(accountID: account.id, actor: f.admin)
        #expect(try counts() == [3, 3, 3, 3], "also with no session left to end")
        _ = try f.store.setPasswordHash(accountID: account.id, hash: "$scrypt$b", actor: f.admin, revokeSessions: true)
        #expect(try counts() == [4, 4, 4, 4], "a password set with its sessions ended")
        _ = try f.store.setPasswordHash(accountID: account.id, hash: "$scrypt$c", actor: f.admin)
        #expect(try counts() == [4, 4, 4, 4], "a password set without")
        var reset = ""
        _ = try f.store.issueEmailLink(accountID: account.id, purpose: .resetPassword, lifetime: 600, actor: f.admin) { account, token in
            reset = token
            return OutgoingMail(recipient: account.email, subject: "Reset", body: token)
        }
        #expect(try f.store.resetPassword(token: reset, hash: "$scrypt$d") != nil)
        #expect(try counts() == [5, 5, 5, 5], "a password reset by its link")
        #expect(try f.store.signOutsEverywhere(accountID: other.id) == 0, "another account's count is its own")
        #expect(try f.store.signOutsEverywhere(accountID: AccountID(rawValue: "missing")) == nil)
    }
}

@Suite("Group commit of metered reads")
struct GroupCommitTests {
    @Test("concurrent metered reads share transactions, each answered exactly; a bad read fails alone", arguments: TestBackend.all, [1, 2])
    func sharedCommits(backend: TestBackend, committers: Int) throws {
        let f = try StoreFixture(backend: backend) { $0.meterCommitters = committers }
        try f.title("euronews")
        let store = f.store
        let now = f.clock.now()
        // 40 readers on threads of their own (as the service's blocking pool runs them) each
        // read 5 articles at once with a limit of 3; one asks for a title that does not exist.
        let collected = LockedResults()
        let ready = DispatchGroup()
        let done = DispatchGroup()
        let start = DispatchSemaphore(value: 0)
        for reader in 0..<40 {
            ready.enter()
            done.enter()
            Thread {
                ready.leave()
                start.wait()
                for article in 0..<5 {
                    let title = reader == 7 && article == 2 ? "nope" : "euronews"
                    let read = ArticleRead(subject: .device("d\(reader)"), titleID: TitleID(rawValue: title), articleID: "a\(article)", at: now)
                    do throws(StoreError) {
                        collected.add(reader, .success(try store.recordCountedRead(read, window: 86_400, limit: 3).outcome))
                    } catch { collected.add(reader, .failure(error)) }
                }
                done.leave()
            }.start()
        }
        ready.wait()
        for _ in 0..<40 { start.signal() }
        done.wait()
        let results = collected.all
        for reader in 0..<40 {
            let used = try store.meterUsage(subject: .device("d\(reader)"), window: 86_400).used
            let mine = results.filter { $0.0 == reader }.map(\.1)
            let recorded = mine.filter { if case .success(.recorded) = $0 { true } else { false } }.count
            #expect(recorded == 3, "reader \(reader): exactly the limit")
            #expect(used == 3)
        }
        #expect(results.contains { $0.0 == 7 && $0.1 == .failure(.titleNotFound("nope")) })
        let (batches, reads) = store.groupCommit.statistics
        #expect(reads == 200)
        #expect(batches < reads, "concurrent reads shared commits (\(batches) transactions for \(reads) reads)")
    }
}

@Suite("Two transactions of metered reads in flight (PostgreSQL)")
struct TwoCommittersTests {
    /// With `meterCommitters = 2` a second batch starts while the first is still in its
    /// transaction: here the first waits for a meter lock another connection holds, and
    /// reads of other readers are committed meanwhile, the meter still exact among them.
    @Test("a batch blocked on one reader's lock does not hold up the others; every meter stays exact", arguments: TestBackend.postgresOnly)
    func secondBatchWhileFirstWaits(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend) { $0.meterCommitters = 2 }
        try f.title("euronews")
        let store = f.store
        let now = f.clock.now()
        let postgres = try #require(store.backend as? PostgresBackend)
        let holder = try postgres.connections.lease()
        defer { postgres.connections.giveBack(holder, reusable: false) }
        for sql in ["BEGIN", "SELECT count(pg_advisory_xact_lock(hashtextextended('\(MeterSubject.device("held").key)', 0)))"] {
            _ = try holder.query(PostgresQuery(unsafeSQL: sql), logger: PostgresSQL.logger).wait()
        }
        let held = DispatchSemaphore(value: 0)
        let heldOutcome = Mutex<Result<Store.MeteredRead, StoreError>?>(nil)
        Thread {
            let read = ArticleRead(subject: .device("held"), titleID: TitleID(rawValue: "euronews"), articleID: "h", at: now)
            let outcome: Result<Store.MeteredRead, StoreError>
            do throws(StoreError) { outcome = .success(try store.recordCountedRead(read, window: 86_400, limit: 3).outcome) } catch { outcome = .failure(error) }
            heldOutcome.withLock { $0 = outcome }
            held.signal()
        }.start()
        // Its batch taken (nothing left queued to join it), and in the function, waiting.
        var polls = 0
        while store.groupCommit.inFlight == 0 || store.meteredReadsWaiting > 0, polls < 500 { Thread.sleep(forTimeInterval: 0.01); polls += 1 }
        #expect(store.groupCommit.inFlight == 1 && store.meteredReadsWaiting == 0)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(store.groupCommit.statistics.batches == 0)

        // Meanwhile 20 readers each ask for 5 articles at once with a limit of 3.
        let collected = LockedResults()
        let done = DispatchGroup()
        for reader in 0..<20 {
            for article in 0..<5 {
                done.enter()
                Thread {
                    let read = ArticleRead(subject: .device("d\(reader)"), titleID: TitleID(rawValue: "euronews"), articleID: "a\(article)", at: now)
                    do throws(StoreError) {
                        collected.add(reader, .success(try store.recordCountedRead(read, window: 86_400, limit: 3).outcome))
                    } catch { collected.add(reader, .failure(error)) }
                    done.leave()
                }.start()
            }
        }
        #expect(done.wait(timeout: .now() + 20) == .success, "the other readers' reads were committed while the first batch waited")
        #expect(store.groupCommit.inFlight == 1, "the first batch is still waiting for the lock")
        #expect(heldOutcome.withLock { $0 } == nil, "the held reader's read is still waiting")
        for reader in 0..<20 {
            let recorded = collected.all.filter { $0.0 == reader }.filter { if case .success(.recorded) = $0.1 { true } else { false } }.count
            #expect(recorded == 3, "reader \(reader): exactly the limit")
            #expect(try store.meterUsage(subject: .device("d\(reader)"), window: 86_400).used == 3)
        }

        _ = try holder.query(PostgresQuery(unsafeSQL: "COMMIT"), logger: PostgresSQL.logger).wait()
        #expect(held.wait(timeout: .now() + 10) == .success)
        #expect(heldOutcome.withLock { $0 } == .success(.recorded(used: 1)))
        #expect(store.groupCommit.statistics.reads == 101)
    }

    @Test("on SQLite the setting changes nothing: one writer, one committer")
    func sqliteKeepsOne() throws {
        let f = try StoreFixture(backend: .sqlite) { $0.meterCommitters = 4 }
        #expect(f.store.groupCommit.committers == 1)
    }
}

final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [(Int, Result<Store.MeteredRead, StoreError>)] = []
    func add(_ reader: Int, _ result: Result<Store.MeteredRead, StoreError>) { lock.lock(); results.append((reader, result)); lock.unlock() }
    var all: [(Int, Result<Store.MeteredRead, StoreError>)] { lock.lock(); defer { lock.unlock() }; return results }
}

@Suite("Group commit for async callers")
struct AsyncGroupCommitTests {
    @Test("300 concurrent async reads of one subject with a limit of 3: exactly 3 recorded, the rest exhausted or re-reads, in shared transactions", arguments: TestBackend.all, [1, 2])
    func lastUnitExact(backend: TestBackend, committers: Int) async throws {
        let f = try StoreFixture(backend: backend) { $0.meterCommitters = committers }
        try f.title("euronews")
        let store = f.store
        let now = f.clock.now()
        let outcomes = try await withThrowingTaskGroup(of: Store.MeteredRead.self) { group in
            for index in 0..<300 {
                group.addTask {
                    // 100 articles, each asked three times at once.
                    let read = ArticleRead(subject: .device("d1"), titleID: TitleID(rawValue: "euronews"), articleID: "a\(index % 100)", at: now)
                    return try await store.recordCountedRead(read, window: 86_400, limit: 3).outcome
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let recorded = outcomes.filter { if case .recorded = $0 { true } else { false } }.count
        let rereads = outcomes.filter { $0 == .reread }.count
        #expect(recorded == 3)
        #expect(rereads == 6, "each recorded article asked twice more: free re-reads")
        #expect(outcomes.count - recorded - rereads == 291)
        #expect(try store.meterUsage(subject: .device("d1"), window: 86_400).used == 3)
        #expect(try f.countsFromAnotherStore()["reads"] == 3, "3 counted; the 6 re-reads, asked at the same instant, write nothing")
        let (batches, reads) = store.groupCommit.statistics
        #expect(reads == 300 && batches < 300)
    }

    @Test("closing the store commits what is queued; a read after it fails with a clear error and writes nothing", arguments: TestBackend.all)
    func closeDrains(backend: TestBackend) async throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let store = f.store
        let now = f.clock.now()
        let answered = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<50 {
                group.addTask {
                    let read = ArticleRead(subject: .device("d\(index)"), titleID: TitleID(rawValue: "euronews"), articleID: "a", at: now)
                    return try await store.recordCountedRead(read, window: 86_400, limit: 3).outcome == .recorded(used: 1)
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        try store.close()
        #expect(answered == 50)
        #expect(try f.countsFromAnotherStore()["reads"] == 50)
        let late = ArticleRead(subject: .device("late"), titleID: TitleID(rawValue: "euronews"), articleID: "a", at: now)
        await #expect(throws: StoreError.cannotOpen(path: store.location, detail: "the store is closed")) {
            _ = try await store.recordCountedRead(late, window: 86_400, limit: 3).outcome
        }
        #expect(throws: StoreError.cannotOpen(path: store.location, detail: "the store is closed")) {
            _ = try store.recordCountedRead(late, window: 86_400, limit: 3).outcome
        }
        #expect(try f.countsFromAnotherStore()["reads"] == 50)
    }
}

@Suite("When a meter frees a unit")
struct CountedReadTests {
    let window: TimeInterval = 86_400

    /// A read of a Euronews article by `device`, `offset` seconds after `start`.
    func read(_ device: String, _ article: String, _ start: Date, _ offset: TimeInterval) -> ArticleRead {
        ArticleRead(subject: .device(device), titleID: TitleID(rawValue: "euronews"), articleID: article, at: start.addingTimeInterval(offset))
    }

    @Test("a recorded, re-read or refused read says the meter's count and when the oldest read it counts was made (reads older than the window aside)", arguments: TestBackend.all)
    func oldestCounted(backend: TestBackend) async throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let t = f.clock.now()
        func read(_ article: String, _ offset: TimeInterval) -> ArticleRead { self.read("d1", article, t, offset) }
        try f.store.recordRead(read("old", -2 * window))  // out of every window below
        let first = try await f.store.recordCountedRead(read("a", 0), window: window, limit: 2)
        #expect(first == .init(outcome: .recorded(used: 1), oldestCounted: t, used: 1), "the first read is its own oldest")
        let second = try await f.store.recordCountedRead(read("b", 60), window: window, limit: 2)
        #expect(second == .init(outcome: .recorded(used: 2), oldestCounted: t, used: 2))
        let again = try await f.store.recordCountedRead(read("b", 120), window: window, limit: 2)
        #expect(again == .init(outcome: .reread, oldestCounted: t, used: 2), "a re-read: free, the meter as it stands")
        let refused = try await f.store.recordCountedRead(read("c", 180), window: window, limit: 2)
        #expect(refused == .init(outcome: .exhausted(used: 2), oldestCounted: t, used: 2))
        // A day later "a" has left the window. "b" stays counted until its latest read (the
        // re-read at 120 s) leaves: that is what frees the next unit, not its first at 60 s.
        let later = try await f.store.recordCountedRead(read("c", window + 30), window: window, limit: 2)
        #expect(later == .init(outcome: .recorded(used: 2), oldestCounted: t.addingTimeInterval(120), used: 2))
        // The same answers as the separate query the check used to make.
        #expect(try f.store.oldestCountedRead(subject: .device("d1"), window: window, at: t.addingTimeInterval(window + 30)) == t.addingTimeInterval(120))
        // And the meter agrees: at 60 s past the window "b" still counts (2 of 2 used)...
        let stillFull = try await f.store.recordCountedRead(read("d", window + 61), window: window, limit: 2)
        #expect(stillFull.outcome == .exhausted(used: 2), "\(stillFull)")
        // ...and a unit is free once its re-read has left too.
        let freed = try await f.store.recordCountedRead(read("d", window + 121), window: window, limit: 2)
        #expect(freed.outcome == .recorded(used: 2), "\(freed)")
    }

    @Test("a re-read moves when its article's unit frees: the next unit is another article's", arguments: TestBackend.all)
    func rereadMovesReset(backend: TestBackend) async throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let t = f.clock.now()
        _ = try await f.store.recordCountedRead(read("d2", "a", t, 0), window: window, limit: 5)
        _ = try await f.store.recordCountedRead(read("d2", "b", t, 60), window: window, limit: 5)
        let reread = try await f.store.recordCountedRead(read("d2", "a", t, 120), window: window, limit: 5)
        #expect(reread == .init(outcome: .reread, oldestCounted: t.addingTimeInterval(60), used: 2), "b's read leaves first now")
        #expect(try f.store.oldestCountedRead(subject: .device("d2"), window: window, at: t.addingTimeInterval(120)) == t.addingTimeInterval(60))
        // Only a re-read: the article alone, its latest read.
        let onlyOne = try await f.store.recordCountedRead(read("d3", "x", t, 0), window: window, limit: 5)
        #expect(onlyOne.oldestCounted == t)
        let onlyOneAgain = try await f.store.recordCountedRead(read("d3", "x", t, 90), window: window, limit: 5)
        #expect(onlyOneAgain == .init(outcome: .reread, oldestCounted: t.addingTimeInterval(90), used: 1))
    }

    @Test("a re-read within a minute of the article's latest read writes nothing; later, one row", arguments: TestBackend.all)
    func quietRereads(backend: TestBackend) async throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let t = f.clock.now()
        _ = try await f.store.recordCountedRead(read("d4", "a", t, 0), window: window, limit: 5)
        let rows = try f.store.readCount()
        for offset in [1.0, 10, 59] {
            let again = try await f.store.recordCountedRead(read("d4", "a", t, offset), window: window, limit: 5)
            #expect(again == .init(outcome: .reread, oldestCounted: t, used: 1), "at \(offset) s")
        }
        #expect(try f.store.readCount() == rows, "reloads within the minute: no row")
        let later = try await f.store.recordCountedRead(read("d4", "a", t, 61), window: window, limit: 5)
        #expect(later == .init(outcome: .reread, oldestCounted: t.addingTimeInterval(61), used: 1))
        #expect(try f.store.readCount() == rows + 1, "a minute on: the article stays counted from this read")
    }
}

@Suite("Metered reads committed out of order")
struct OutOfOrderMeterTests {
    @Test("a read stamped later but committed first holds the last unit: the earlier one is refused", arguments: TestBackend.all)
    func laterStampCommittedFirst(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let t = f.clock.now()
        let later = ArticleRead(subject: .device("d1"), titleID: TitleID(rawValue: "euronews"), articleID: "b", at: t.addingTimeInterval(0.002))
        let earlier = ArticleRead(subject: .device("d1"), titleID: TitleID(rawValue: "euronews"), articleID: "a", at: t)
        #expect(try f.store.recordCountedRead(later, window: 86_400, limit: 1).outcome == .recorded(used: 1))
        #expect(try f.store.recordCountedRead(earlier, window: 86_400, limit: 1).outcome == .exhausted(used: 1))
        #expect(try f.store.meterUsage(subject: .device("d1"), window: 86_400, at: t.addingTimeInterval(1)).used == 1)
    }
}
