import Foundation
import Synchronization
import PaywallCore
import PostgresNIO
import PaywallTestSupport
import Testing
@testable import PaywallStore

/// postgres-nio reports a prepared statement's failure in its older shape (`PostgresError`);
/// the store must read it as it reads any statement's (retries, broken connections).
@Suite("Statements' failures")
struct StatementFailureTests {
    @Test("a closed connection or a protocol error is the connection's failure, never retried, never the caller's")
    func connectionFailures() {
        for error in [PostgresError.connectionClosed, .protocol("Unexpected connection close")] {
            let normalized = StatementFailure.normalized(error, sql: "COMMIT")
            #expect(normalized is StatementFailure)
            #expect(PostgresConnectionPool.connectionFailed(normalized), "\(error)")
            #expect(!PostgresBackend.isRetryable(normalized))
            #expect(PostgresBackend.sqlState(of: normalized) == nil)
            #expect(PostgresBackend.owns(normalized))
        }
    }

    @Test("a server answer keeps its SQLSTATE: serialization failures retry, constraints are named")
    func serverAnswers() {
        let serialization = StatementFailure(sqlState: "40001", message: "could not serialize access", sql: "COMMIT")
        #expect(PostgresBackend.isRetryable(serialization))
        #expect(!PostgresConnectionPool.connectionFailed(serialization))
        let foreignKey = StatementFailure(sqlState: "23503", message: "violates foreign key constraint", sql: "INSERT …")
        #expect(PostgresBackend.constraint(of: foreignKey) == .foreignKey)
        #expect(!PostgresBackend.isRetryable(foreignKey))
        // Anything else passes through untouched.
        struct Other: Error {}
        #expect(StatementFailure.normalized(Other(), sql: "x") is Other)
    }

    @Test("a statement the server forgot or re-planned drops its connection and is retried; a batch goes read by read only when refused for what it holds")
    func classification() {
        for state in ["26000", "0A000"] {
            let lost = StatementFailure(sqlState: state, message: "prepared statement lost", sql: "COMMIT")
            #expect(PostgresConnectionPool.connectionFailed(lost), "\(state): the connection holds statements that no longer work")
            #expect(PostgresBackend.isRetryable(lost), "\(state): tried again, on another connection")
            #expect(!PostgresBackend.refusesBatch(lost))
        }
        for state in ["23503", "42883", "22003", "P0001"] {
            #expect(PostgresBackend.refusesBatch(StatementFailure(sqlState: state, message: "refused", sql: "SELECT")), "\(state)")
        }
        // A timeout, an overload, a shutdown, a serialization failure, a dropped connection:
        // the batch fails (or is retried) as a whole; one by one would wait all over again.
        for state in ["55P03", "57014", "53300", "57P01", "40001", "40P01", nil] {
            #expect(!PostgresBackend.refusesBatch(StatementFailure(sqlState: state, message: "not the batch's fault", sql: "SELECT")), "\(state ?? "no SQLSTATE")")
        }
    }

    @Test("an answer that does not come in time fails the caller as a broken connection and closes it; the pool goes on with another", arguments: TestBackend.postgresOnly)
    func answerDeadline(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let postgres = try #require(f.store.backend as? PostgresBackend)
        let started = Date()
        var closed: PostgresConnection?
        #expect(throws: StatementFailure.self) {
            try postgres.connections.with { connection in
                closed = connection
                // The server answers after 5 s; the caller waits 0.3 s.
                _ = try connection.answer(connection.query(PostgresQuery(unsafeSQL: "SELECT pg_sleep(5)"), logger: PostgresSQL.logger), sql: "SELECT pg_sleep(5)", limit: .milliseconds(300))
            }
        }
        #expect(Date().timeIntervalSince(started) < 3, "given up at the limit, not after the server's answer")
        let connection = try #require(closed)
        try connection.closeFuture.wait()
        #expect(connection.isClosed)
        // The store works on a new connection.
        try f.title("euronews")
        #expect(try f.store.titles().map(\.id.rawValue) == ["euronews"])
    }

    @Test("every connection asks the server to end a session idle in a transaction after 15 s and to probe a silent client", arguments: TestBackend.postgresOnly)
    func sessionLimits(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let postgres = try #require(f.store.backend as? PostgresBackend)
        let (shown, limit) = try postgres.connections.with { connection -> ([String], TimeAmount?) in
            let sql = PostgresSQL(connection: connection, backend: postgres)
            let shown = try ["idle_in_transaction_session_timeout", "tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count"].map { name in
                try sql.fetchValue(String.self, "SELECT current_setting('\(name)')") ?? "?"
            }
            return (shown, sql.answerLimit)
        }
        #expect(shown == ["15s", "30", "10", "3"])
        // Statements wait for their answer as long as the server may take, and a margin.
        #expect(limit == postgres.connections.answerLimit)
        #expect(postgres.connections.answerLimit >= .seconds(40))
    }

    @Test("a batch of metered reads that meets one reader's lock held elsewhere: the others are recorded, only that reader's read fails, quickly", arguments: TestBackend.postgresOnly)
    func lockedReaderInBatch(backend: TestBackend) throws {
        let day: TimeInterval = 86_400
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        // A busy timeout longer than the test allows: the batch waits its own shorter limit.
        let store = try f.reopen { $0.busyTimeout = 20 }
        defer { try? store.close() }
        // Another session (a server frozen mid-transaction) holds one reader's meter lock.
        let holder = try #require(f.store.backend as? PostgresBackend)
        let held = MeterSubject.device("held").key
        func advisory(_ function: String) throws {
            try holder.connections.with { connection in
                let sql = PostgresSQL(connection: connection, backend: holder)
                _ = try sql.fetchValue(String.self, "SELECT \(function)(hashtextextended(?, 0))::text", [held])
            }
        }
        try advisory("pg_advisory_lock")
        let reads = [("held", "a1"), ("free-1", "a1"), ("free-2", "a2")].map { subject, article in
            (read: ArticleRead(subject: .device(subject), titleID: TitleID(rawValue: "euronews"), articleID: article, at: f.clock.now()), window: 30 * day, limit: 3)
        }
        let started = Date()
        let outcomes = store.commitMetered(reads)
        #expect(Date().timeIntervalSince(started) < 10, "the batch's 1 s wait, then a brief one each; not the 20 s busy timeout")
        guard case .failure(.locked) = outcomes[0] else { Issue.record("the held reader's read: \(outcomes[0])"); return }
        for outcome in outcomes.dropFirst() {
            #expect((try? outcome.get().outcome) == .recorded(used: 1), "\(outcome)")
        }
        try advisory("pg_advisory_unlock")
        #expect(try store.recordCountedRead(reads[0].read, window: 30 * day, limit: 3).outcome == .recorded(used: 1))
    }

    @Test("opening an up-to-date database takes no schema lock: a process holding it (a migration cut off) stops no server's start", arguments: TestBackend.postgresOnly)
    func upToDateOpensWithoutTheLock(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let postgres = try #require(f.store.backend as? PostgresBackend)
        // Held on a connection of the running store (a session lock: it stays after the call).
        try postgres.connections.with { connection in
            _ = try connection.answer(connection.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_lock(\(PostgresMigrator.lockKey))"), logger: PostgresSQL.logger), sql: "lock")
        }
        let started = Date()
        let reopened = try f.reopen()
        defer { try? reopened.close() }
        #expect(Date().timeIntervalSince(started) < 5)
        try f.title("euronews")
        #expect(try reopened.titles().map(\.id.rawValue) == ["euronews"])
    }

    @Test("the batch function dropped under a running store: metered reads go read by read, on a connection that prepared it and on new ones", arguments: TestBackend.postgresOnly)
    func batchFunctionGone(backend: TestBackend) throws {
        let day: TimeInterval = 86_400
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        func read(_ subject: String, _ article: String, _ store: Store) throws -> Store.MeteredRead {
            try store.recordCountedRead(
                ArticleRead(subject: .device(subject), titleID: TitleID(rawValue: "euronews"), articleID: article, at: f.clock.now()),
                window: 30 * day, limit: 2).outcome
        }
        #expect(try read("d", "a1", f.store) == .recorded(used: 1))  // the function is prepared now
        let postgres = try #require(f.store.backend as? PostgresBackend)
        try postgres.connections.with { connection in
            _ = try connection.query(PostgresQuery(unsafeSQL: "DROP FUNCTION paywall_metered_reads"), logger: PostgresSQL.logger).wait()
        }
        #expect(try read("d", "a2", f.store) == .recorded(used: 2))
        #expect(try read("d", "a2", f.store) == .reread)
        #expect(try read("d", "a3", f.store) == .exhausted(used: 2))
        // New connections fail to prepare it: the same.
        let reopened = try f.reopen()
        defer { try? reopened.close() }
        #expect(try read("e", "a1", reopened) == .recorded(used: 1))
        #expect(try read("e", "a2", reopened) == .recorded(used: 2))
        #expect(try read("e", "a3", reopened) == .exhausted(used: 2))
        #expect(try reopened.meterUsage(subject: .device("d"), window: 30 * day).used == 2)
    }

    @Test("prepared statements the server forgot (DEALLOCATE ALL, as a pooler may): the connection is dropped and the work done on another", arguments: TestBackend.postgresOnly)
    func statementsForgotten(backend: TestBackend) throws {
        let day: TimeInterval = 86_400
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let postgres = try #require(f.store.backend as? PostgresBackend)
        func read(_ article: String) throws -> Store.MeteredRead {
            try f.store.recordCountedRead(
                ArticleRead(subject: .device("d"), titleID: TitleID(rawValue: "euronews"), articleID: article, at: f.clock.now()),
                window: 30 * day, limit: 10).outcome
        }
        for (index, article) in ["a1", "a2", "a3"].enumerated() {
            #expect(try read(article) == .recorded(used: index + 1))
            // The one idle connection (the pool hands out the last returned first) forgets
            // what was prepared on it, BEGIN and COMMIT among them.
            try postgres.connections.with { connection in
                _ = try connection.query(PostgresQuery(unsafeSQL: "DEALLOCATE ALL"), logger: PostgresSQL.logger).wait()
            }
        }
        #expect(try read("a4") == .recorded(used: 4))
        #expect(try f.store.meterUsage(subject: .device("d"), window: 30 * day).used == 4)
    }

    @Test("a reader's facts are read through statements prepared once per connection, and read back the same", arguments: TestBackend.postgresOnly)
    func factsPrepared(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let account = try f.account("ada@example.com")
        let postgres = try #require(f.store.backend as? PostgresBackend)
        let facts = try #require(try f.store.accountFacts(id: account.id))
        #expect(facts.account == account && facts.memberships.isEmpty && facts.trial == nil)
        #expect(try f.store.isTrialEligible(personKey: "ada@example.com"))
        // The one idle connection (the pool hands out the last returned first) ran them.
        let statements = try postgres.connections.with { connection in
            try connection.query(PostgresQuery(unsafeSQL: "SELECT statement FROM pg_prepared_statements"), logger: PostgresSQL.logger).wait()
                .rows.map { try $0.decode(String.self) }
        }
        // The account, its trial and its memberships in one statement; trial eligibility apart.
        for fragment in ["FROM accounts a", "LEFT JOIN memberships m ON m.account_id = a.id", "FROM trials WHERE person_key = $1"] {
            #expect(statements.contains { $0.contains(fragment) }, "\(fragment) not prepared: \(statements)")
        }
    }

    @Test("a reader's facts read at once (PostgreSQL: one statement) equal their parts read one by one", arguments: TestBackend.all)
    func factsAtOnce(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        for id in ["euronews", "le-monde", "the-daily"] { try f.title(id) }
        let store = f.store
        let titles = Set(["euronews", "le-monde"].map(TitleID.init(rawValue:)))
        _ = try store.addPlan(id: PlanID(rawValue: "all"), name: "All", period: .month, bundle: .all, actor: .system)
        _ = try store.addPlan(id: PlanID(rawValue: "news"), name: "News", period: .year, bundle: .titles(titles), actor: .system)
        let bare = try f.account("bare@example.com")
        let full = try f.account("full@example.com")
        let end = f.clock.now().addingTimeInterval(30 * 86_400)
        _ = try store.grantMembership(accountID: full.id, planID: PlanID(rawValue: "news"), periodEnd: end, source: .admin, actor: .system)
        _ = try store.grantMembership(accountID: full.id, planID: PlanID(rawValue: "all"), periodEnd: end, source: .comp, actor: .system)
        _ = try store.startTrial(accountID: full.id, duration: 14 * 86_400, actor: .system)
        for account in [bare, full] {
            let facts = try #require(try store.accountFacts(id: account.id))
            #expect(facts.account == (try store.account(id: account.id)))
            #expect(facts.trial == (try store.trial(accountID: account.id)))
            let parts = try store.readMembershipsWithBundles(accountID: account.id)
            #expect(facts.memberships.map(\.membership) == parts.map(\.membership))
            #expect(facts.memberships.map(\.bundle) == parts.map(\.bundle))
        }
        let rich = try #require(try store.accountFacts(id: full.id))
        #expect(rich.memberships.map(\.bundle) == [.all, .titles(titles)], "newest first, each with its plan's titles")
        #expect(rich.trial != nil)
        #expect(try store.accountFacts(id: bare.id)?.trial == nil)
        #expect(try store.accountFacts(id: AccountID(rawValue: "00000000-0000-0000-0000-000000000000")) == nil)
    }

    @Test("an access check's snapshot on a connection that forgot its statements fails once; that connection is not leased again", arguments: TestBackend.postgresOnly)
    func snapshotStatementsForgotten(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let postgres = try #require(f.store.backend as? PostgresBackend)
        // A snapshot (as an access check makes) whose one query reaches the database.
        func check(_ n: Int) throws -> Account? { try f.store.snapshot { try f.store.account(emailKey: "nobody-\(n)@example.com") } }
        #expect(try check(0) == nil)  // BEGIN READ ONLY prepared on the one idle connection
        try postgres.connections.with { connection in
            _ = try connection.query(PostgresQuery(unsafeSQL: "DEALLOCATE ALL"), logger: PostgresSQL.logger).wait()
        }
        _ = try? check(1)  // may fail: its BEGIN is gone on that connection
        for n in 2..<6 { #expect(try check(n) == nil, "the broken connection went back to the pool") }
    }

    @Test("a statement sent on a connection that closed fails at once instead of waiting for ever", arguments: TestBackend.postgresOnly)
    func closedConnection(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let postgres = try #require(f.store.backend as? PostgresBackend)
        let connection = try postgres.connections.lease()
        try connection.close().wait()
        // On a thread of its own: a wait that never ends must fail this test, not hang it.
        let outcomes = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        Thread {
            for (label, statement) in [
                ("a query", { _ = try connection.answer(connection.query(PostgresQuery(unsafeSQL: "SELECT 1"), logger: PostgresSQL.logger), sql: "SELECT 1") }),
                ("a prepared statement", { _ = try PostgresSQL(connection: connection, backend: postgres).fetchPrepared("SELECT 1 / (?::bigint - ?::bigint)", [Int64(2), Int64(1)]) }),
            ] as [(String, () throws -> Void)] {
                do {
                    try statement()
                    outcomes.withLock { $0.append("\(label): answered") }
                } catch {
                    outcomes.withLock { $0.append("\(label): \(PostgresConnectionPool.connectionFailed(error) ? "connection failed" : "\(error)")") }
                }
            }
            done.signal()
        }.start()
        guard done.wait(timeout: .now() + 20) == .success else {
            Issue.record("a statement on a closed connection waited for ever")
            return
        }
        #expect(outcomes.withLock { $0 } == ["a query: connection failed", "a prepared statement: connection failed"])
        postgres.connections.giveBack(connection, reusable: false)
        #expect(try f.store.rowCounts()["accounts"] == 0, "the store still answers")
    }

    @Test("a real server's answer to a prepared statement keeps its SQLSTATE, and the connection stays usable", arguments: TestBackend.postgresOnly)
    func realServer(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let postgres = try #require(f.store.backend as? PostgresBackend)
        do {
            _ = try postgres.connections.with { connection in
                try PostgresSQL(connection: connection, backend: postgres).fetchPrepared("SELECT 1 / (?::bigint - ?::bigint)", [Int64(1), Int64(1)])
            }
            Issue.record("a division by zero answered")
        } catch {
            #expect(error is StatementFailure)
            #expect(PostgresBackend.sqlState(of: error) == "22012")
            #expect(!PostgresConnectionPool.connectionFailed(error))
            if case let .postgres(_, sqlState, _, _) = postgres.storeError(error) {
                #expect(sqlState == "22012")
            } else {
                Issue.record("mapped to \(postgres.storeError(error))")
            }
        }
        #expect(try f.store.rowCounts()["accounts"] == 0, "the store still answers")
    }
}

@Suite("Policy publications on PostgreSQL")
struct PolicyPublicationOrderTests {
    @Test("publications take a lock, so their numbers follow their commits (servers only move to a higher number)", arguments: TestBackend.postgresOnly)
    func serialized(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let postgres = try #require(f.store.backend as? PostgresBackend)
        // Another publication in progress: its transaction holds the lock.
        let holder = try postgres.connections.lease()
        defer { postgres.connections.giveBack(holder, reusable: false) }
        for sql in ["BEGIN", "SELECT count(pg_advisory_xact_lock(hashtextextended('paywall:policy_revisions', 0)))"] {
            _ = try holder.query(PostgresQuery(unsafeSQL: sql), logger: PostgresSQL.logger).wait()
        }
        let published = Mutex<Int64?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let number = try? f.store.publishPolicy(revision: "0123456789abcdef", files: ["paywall.policy": "defaults { access teaser }"], author: "ada", note: nil).number
            published.withLock { $0 = number }
            done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 0.5) == .timedOut, "a publication waits for the one in progress")
        _ = try holder.query(PostgresQuery(unsafeSQL: "COMMIT"), logger: PostgresSQL.logger).wait()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(published.withLock { $0 } != nil)
    }
}

@Suite("Reads recorded outside the meter's path, racing a deletion (PostgreSQL)")
struct RecordedReadDeletionTests {
    /// A deletion waits for the account's meter lock, then a recorded read (an admin's
    /// `meter record`, an import) waits behind it: once the deletion has committed, the read
    /// must see the account gone. A SERIALIZABLE write took its snapshot with the lock's
    /// own statement, before the deletion committed, and kept the read of a deleted account.
    @Test("a read recorded while the account is being deleted is refused, not kept", arguments: TestBackend.postgresOnly)
    func readAfterDeletion(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let account = try f.account("zed@example.com")
        let postgres = try #require(f.store.backend as? PostgresBackend)
        let holder = try postgres.connections.lease()
        defer { postgres.connections.giveBack(holder, reusable: false) }
        for sql in ["BEGIN", "SELECT count(pg_advisory_xact_lock(hashtextextended('\(MeterSubject.account(account.id).key)', 0)))"] {
            _ = try holder.query(PostgresQuery(unsafeSQL: sql), logger: PostgresSQL.logger).wait()
        }
        let deleted = DispatchSemaphore(value: 0)
        let recorded = DispatchSemaphore(value: 0)
        let outcomes = Mutex<[String]>([])
        Thread {
            do { try f.store.deleteAccount(id: account.id, actor: .system); outcomes.withLock { $0.append("deleted") } } catch {
                outcomes.withLock { $0.append("delete failed: \(error)") }
            }
            deleted.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.3)  // the deletion queues on the lock first
        for (index, many) in [false, true].enumerated() {
            Thread {
                let read = ArticleRead(subject: .account(account.id), titleID: TitleID(rawValue: "euronews"), articleID: "orphan\(index)", at: f.clock.now())
                do {
                    if many { try f.store.recordReads([read]) } else { try f.store.recordRead(read) }
                    outcomes.withLock { $0.append("recorded") }
                } catch {
                    outcomes.withLock { $0.append((error as? StoreError) == .accountNotFound(account.id.rawValue) ? "refused" : "failed: \(error)") }
                }
                recorded.signal()
            }.start()
        }
        Thread.sleep(forTimeInterval: 0.3)
        _ = try holder.query(PostgresQuery(unsafeSQL: "COMMIT"), logger: PostgresSQL.logger).wait()
        #expect(deleted.wait(timeout: .now() + 10) == .success)
        #expect(recorded.wait(timeout: .now() + 10) == .success && recorded.wait(timeout: .now() + 10) == .success)
        #expect(outcomes.withLock { $0 }.sorted() == ["deleted", "refused", "refused"], "the deletion first, then both reads refused")
        #expect(try f.store.readCount() == 0, "no read outlives its account")
    }
}
