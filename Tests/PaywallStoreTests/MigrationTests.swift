import Foundation
import Synchronization
import GRDB
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

@Suite("Migrations")
struct MigrationTests {
    func tempPath() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-migrate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent("db.sqlite").path
    }

    @Test("an empty file gets every migration, and a second open changes nothing")
    func fromEmpty() throws {
        let path = try tempPath()
        let store = try Store(path: path)
        let health = try store.health()
        #expect(health.appliedMigrations == Store.knownMigrations)
        #expect(health.isHealthy)
        let journal = try store.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
        let fk = try store.pool.read { try Int.fetchOne($0, sql: "PRAGMA foreign_keys") }
        #expect(fk == 1)
        let sync = try store.pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
        #expect(sync == 2, "synchronous should be FULL")
        let checkpoint = try store.pool.write { try Int.fetchOne($0, sql: "PRAGMA wal_autocheckpoint") }
        #expect(checkpoint == SQLiteBackend.checkpointPages && checkpoint != 1_000, "the writer's log is checkpointed at 10,000 pages, not SQLite's 1,000")
        let limit = try store.pool.write { try Int.fetchOne($0, sql: "PRAGMA journal_size_limit") }
        #expect(limit == 64 << 20, "the log file is cut back to 64 MiB")
        try store.close()
        let again = try Store(path: path)
        #expect(try again.appliedMigrations() == Store.knownMigrations)
    }

    /// When the seeded sessions were made, relative to now.
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 24 * hour

    /// Data written at each schema version, using only the tables that version has.
    func seed(_ db: Database, upTo index: Int) throws {
        let now = Date().millis
        try db.execute(sql: "INSERT INTO accounts (id, email, email_key, display_name, created_at, updated_at) VALUES ('acc-1', 'Ada@Example.com', 'ada@example.com', 'Ada', 1, 1)")
        try db.execute(sql: "INSERT INTO credentials (account_id, password_hash, updated_at) VALUES ('acc-1', '$scrypt$old', 1)")
        try db.execute(sql: "INSERT INTO audit_log (at, actor, action, target) VALUES (1, 'admin:old', 'account.create', 'account:acc-1')")
        if index >= 1 {
            try db.execute(sql: "INSERT INTO titles (id, name, publisher, created_at) VALUES ('euronews', 'Euronews', 'Euronews SA', 1)")
            try db.execute(sql: "INSERT INTO plans (id, name, period, all_titles, created_at) VALUES ('news', 'News', 'month', 0, 1)")
            try db.execute(sql: "INSERT INTO plan_titles (plan_id, title_id) VALUES ('news', 'euronews')")
        }
        if index >= 2 {
            try db.execute(sql: "INSERT INTO trials (account_id, person_key, started_at, ends_at, status) VALUES ('acc-1', 'ada@example.com', 1, 2, 'active')")
            try db.execute(sql: """
                INSERT INTO memberships (account_id, plan_id, status, current_period_end, source, created_at, updated_at)
                VALUES ('acc-1', 'news', 'active', 9999999999999, 'admin', 1, 1)
                """)
        }
        if index >= 3 {
            try db.execute(sql: "INSERT INTO reads (subject, title_id, article_id, read_at) VALUES ('device:d', 'euronews', 'a1', 1)")
            // A family rotated once (s-1 replaced by s-2), and one that began 100 days ago
            // with a long-lived session: past the 90-day family lifetime once migrated.
            try db.execute(sql: """
                INSERT INTO sessions (id, account_id, family_id, token_hash, created_at, expires_at, revoked_at, replaced_by) VALUES
                    ('s-1', 'acc-1', 'fam-1', x'A1', ?, ?, ?, 's-2'),
                    ('s-2', 'acc-1', 'fam-1', x'A2', ?, ?, NULL, NULL),
                    ('s-3', 'acc-1', 'fam-old', x'A3', ?, ?, NULL, NULL)
                """, arguments: [now - 2 * Self.hour, now + 30 * Self.day, now - Self.hour,
                                 now - Self.hour, now + 30 * Self.day,
                                 now - 100 * Self.day, now + 30 * Self.day])
        }
        if index >= 4 {
            try db.execute(sql: "UPDATE accounts SET email_verified_at = 5 WHERE id = 'acc-1'")
            try db.execute(sql: "INSERT INTO title_tags (title_id, tag) VALUES ('euronews', 'news')")
        }
        if index >= 5 {
            // From v6 on, every session row carries its family's start (as v6's code writes it).
            try db.execute(sql: """
                UPDATE sessions SET family_started_at =
                    (SELECT MIN(family.created_at) FROM sessions AS family WHERE family.family_id = sessions.family_id)
                """)
        }
    }

    @Test("every earlier schema version migrates to the current one, keeping its data",
          arguments: Array(Migrations.identifiers.indices.dropLast()))
    func fromEarlier(_ index: Int) throws {
        let path = try tempPath()
        let target = Migrations.identifiers[index]
        do {
            let queue = try DatabaseQueue(path: path)
            try Migrations.migrator.migrate(queue, upTo: target)
            try queue.write { try seed($0, upTo: index) }
            try queue.close()
        }
        let store = try Store(path: path)
        let health = try store.health()
        #expect(health.appliedMigrations == Store.knownMigrations)
        #expect(health.isHealthy)
        let account = try #require(try store.account(matching: "ada@example.com"))
        #expect(account.displayName == "Ada")
        #expect(try store.passwordHash(accountID: account.id) == "$scrypt$old")
        if index >= 1 { #expect(try store.plan(id: PlanID(rawValue: "news"))?.bundle == .titles([TitleID(rawValue: "euronews")])) }
        if index >= 2 { #expect(try store.memberships(accountID: account.id).count == 1) }
        // Verification and tags: none before v5 (nothing is invented), kept from v5 on.
        #expect(account.emailVerifiedAt == (index >= 4 ? Date(timeIntervalSince1970: 0.005) : nil))
        if index >= 1 { #expect(try store.title(id: TitleID(rawValue: "euronews"))?.tags == (index >= 4 ? ["news"] : [])) }
        // The migrated file takes every current operation.
        if index < 1 { _ = try store.addTitle(id: TitleID(rawValue: "euronews"), name: "Euronews", publisher: "E", actor: .system) }
        try store.recordRead(ArticleRead(subject: .device("d2"), titleID: TitleID(rawValue: "euronews"), articleID: "a9", at: Date()))
        #expect(try store.auditCount() >= 1)
        // v7: sessions made before it are listed (one per live family, without a device
        // name) and count toward the cap; the device's reads can move to the account.
        if index >= 3 {
            let inUse = try store.sessionsInUse(accountID: account.id)
            #expect(inUse.map(\.id) == ["fam-1"] && inUse.first?.deviceName == nil)
            #expect(try store.moveDeviceReads(device: "d", to: account.id, actor: .system) == 1)
            try checkSeededSessions(store, account)
        }
        // v10: a membership paid through Stripe beside the admin one of the same plan (one
        // live membership per plan and source), its event recorded once.
        if index >= 2 {
            _ = try store.mapBillingProduct(provider: .stripe, externalID: "price_news", planID: PlanID(rawValue: "news"), actor: .system)
            let change = BillingChange(
                provider: .stripe, eventID: "evt_1", type: "customer.subscription.created", occurredAt: Date(), customer: "cus_1",
                subscription: SubscriptionState(id: "sub_1", products: ["price_news"], status: .active, providerStatus: "active", periodEnd: Date().addingTimeInterval(86_400)))
            #expect(try store.applyBilling(change).outcome == .pending)
            #expect(try store.linkBillingCustomer(provider: .stripe, customer: "cus_1", accountID: account.id, actor: .system).map(\.outcome) == [.applied])
            #expect(try store.applyBilling(change).outcome == .duplicate)
            #expect(Set(try store.memberships(accountID: account.id).map(\.source)) == [.admin, .stripe])
        }
        let capped = try store.startSession(accountID: account.id, lifetime: 86_400, deviceName: "phone", maximum: 1)
        #expect(try store.sessionsInUse(accountID: account.id).map(\.id) == [capped.active.id])
        // Sessions: a new family, its rotation, a concurrent refresh, a reuse.
        let (token, started) = try store.createSession(accountID: account.id, lifetime: 86_400)
        guard case let .rotated(next, session) = try store.refreshSession(token: token, lifetime: 86_400) else {
            Issue.record("expected a rotation")
            return
        }
        #expect(session.familyStartedAt == started.familyStartedAt)
        #expect(try store.refreshSession(token: token, lifetime: 86_400) == .alreadyRotated(token: next, session: session))
        #expect(try store.setPasswordHash(accountID: account.id, hash: "$scrypt$new", actor: .system, revokeSessions: true) >= 1)
        #expect(try store.refreshSession(token: token, lifetime: 86_400) == .reuseDetected(familyID: started.familyID))
    }

    /// The sessions seeded before migration v5: each family's start is its oldest session,
    /// the old family is past its lifetime, and the rotated token is still reuse.
    func checkSeededSessions(_ store: Store, _ account: Account) throws {
        let current = try #require(try store.session(tokenHash: [0xA2]))
        let rotatedAt = try #require(try store.pool.read { try Int64.fetchOne($0, sql: "SELECT created_at FROM sessions WHERE id = 's-1'") })
        #expect(current.familyStartedAt == Date(millis: rotatedAt))
        #expect(try store.activeSessions(accountID: account.id).map(\.id) == ["s-2"])
        #expect(try store.session(tokenHash: [0xA3]) == nil)
        #expect(try store.rotateSession(tokenHash: [0xA3], newTokenHash: [0xB3], lifetime: 86_400) == .rejected)
        guard case let .rotated(next) = try store.rotateSession(tokenHash: [0xA2], newTokenHash: [0xB2], lifetime: 86_400) else {
            Issue.record("expected a rotation")
            return
        }
        #expect(next.familyStartedAt == current.familyStartedAt)
        #expect(try store.rotateSession(tokenHash: [0xA1], newTokenHash: [0xB1], lifetime: 86_400) == .reuseDetected(familyID: "fam-1"))
        #expect(try store.session(tokenHash: [0xB2]) == nil)
        #expect(try store.auditEntries(target: "account:acc-1").first?.action == "session.reuse")
    }

    @Test("the PostgreSQL function's quiet re-read is the same minute as SQLite's (written out in its migration)")
    func quietRereadAgrees() throws {
        let step = try #require(PostgresMigrations.steps.first { $0.identifier == "v17-metered-rereads-quiet" })
        #expect(step.statements.joined().contains("p_ats[i] - latest < \(Store.quietRereadMillis) THEN"))
    }

    @Test("two stores opening a new file at the same moment both end migrated (two servers, or two 'db migrate's, starting together)")
    func concurrentMigration() throws {
        for _ in 0..<10 {
            let path = try tempPath()
            let results = Mutex<[String]>([])
            let group = DispatchGroup()
            for _ in 0..<2 {
                group.enter()
                Thread {
                    defer { group.leave() }
                    do {
                        let store = try Store(path: path)
                        try store.close()
                        results.withLock { $0.append("ok") }
                    } catch {
                        results.withLock { $0.append("\(error)") }
                    }
                }.start()
            }
            group.wait()
            #expect(results.withLock { $0 } == ["ok", "ok"])
            let store = try Store(path: path)
            #expect(try store.health().pendingMigrations.isEmpty)
            try store.close()
        }
    }

    @Test("a file migrated by a newer paywall is refused, untouched")
    func tooNew() throws {
        let path = try tempPath()
        try Store(path: path).close()
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-future')") }
        try queue.close()
        #expect(throws: StoreError.schemaTooNew(path: path, unknownMigrations: ["v99-future"])) { try Store(path: path) }
    }

    @Test("read-only opening refuses a file that needs migrations")
    func readOnlyOutdated() throws {
        let path = try tempPath()
        let queue = try DatabaseQueue(path: path)
        try Migrations.migrator.migrate(queue, upTo: Migrations.identifiers[0])
        try queue.close()
        var configuration = StoreConfiguration()
        configuration.readOnly = true
        #expect(throws: StoreError.schemaOutdated(path: path, pendingMigrations: Array(Migrations.identifiers.dropFirst()))) {
            try Store(path: path, configuration: configuration)
        }
    }

    @Test("PostgreSQL: the same migration identifiers; a database a newer paywall migrated is refused", arguments: TestBackend.postgresOnly)
    func postgresVersions(backend: TestBackend) throws {
        #expect(PostgresMigrations.identifiers == Migrations.identifiers, "a version must mean one schema on both backends")
        let f = try StoreFixture(backend: backend)
        #expect(try f.store.health().appliedMigrations == Migrations.identifiers)
        try f.store.write { try $0.execute("INSERT INTO paywall_migrations (identifier, applied_at) VALUES ('v99-future', 0)") }
        #expect(throws: StoreError.schemaTooNew(path: f.store.location, unknownMigrations: ["v99-future"])) { try f.reopen() }
        var readOnly = StoreConfiguration()
        readOnly.readOnly = true
        #expect(throws: StoreError.schemaTooNew(path: f.store.location, unknownMigrations: ["v99-future"])) { try Store(location: f.path, configuration: readOnly) }
    }

    @Test("PostgreSQL: a store opened without migrating keeps the schema as it stands (as a backup's on SQLite); opened as usual, it migrates", arguments: TestBackend.postgresOnly)
    func postgresWithoutMigrating(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let last = try #require(PostgresMigrations.identifiers.last)
        // The last migration's record gone: the database reads as one the previous version made.
        try f.store.write { try $0.execute("DELETE FROM paywall_migrations WHERE identifier = ?", [last]) }
        let kept = try f.reopen { $0.migrate = false }
        #expect(try kept.health().pendingMigrations == [last])
        try kept.close()
        #expect(throws: StoreError.schemaOutdated(path: f.store.location, pendingMigrations: [last])) { try f.reopen { $0.readOnly = true } }
    }
}
