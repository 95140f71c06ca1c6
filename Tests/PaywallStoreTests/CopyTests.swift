import Foundation
import GRDB
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

/// `Store.copy(to:)`: a SQLite store moved into PostgreSQL (the copies need
/// PAYWALL_TEST_POSTGRES_URL; the refusals that need no target run on SQLite alone).
@Suite("Copying a SQLite store into PostgreSQL")
struct CopyTests {
    let day: TimeInterval = 86_400

    /// What the populated source hands out once (tokens are shown once, hashed at rest).
    struct Seeded {
        var ada: Account
        var bob: Account
        var refreshToken: String
        var readerToken: String
        var verifyToken: String
        var undoToken: String
        /// The id of a membership deleted with its account: the largest id SQLite's
        /// AUTOINCREMENT gave out, no longer in the table.
        var deletedMembershipID: Int64
    }

    /// A row in every table of the schema, through the store's own operations.
    func populate(_ f: StoreFixture) throws -> Seeded {
        let store = f.store
        let now = f.clock.now()
        _ = try store.addTitle(id: TitleID(rawValue: "euronews"), name: "Euronews", publisher: "Euronews SA", tags: ["news", "europe"], actor: f.admin)
        try f.title("the-daily")
        try f.plan("all")
        try f.plan("news", bundle: .titles([TitleID(rawValue: "euronews")]))
        let ada = try f.account("ada@example.com")
        let bob = try f.account("Bob.Smith@example.com")

        // Trials, memberships and their history.
        _ = try store.startTrial(accountID: bob.id, duration: 14 * day, actor: f.admin)
        let membership = try store.grantMembership(
            accountID: ada.id, planID: PlanID(rawValue: "news"), periodEnd: now.addingTimeInterval(30 * day), source: .admin, actor: f.admin)
        _ = try store.scheduleCancellation(id: membership.id, actor: f.admin)

        // Meters: an account's reads and a device's.
        try store.recordRead(ArticleRead(subject: .account(ada.id), titleID: TitleID(rawValue: "euronews"), articleID: "a1", at: now))
        try store.recordRead(ArticleRead(subject: .account(ada.id), titleID: TitleID(rawValue: "the-daily"), articleID: "d1", at: now))
        try store.recordRead(ArticleRead(subject: .device("dev-1"), titleID: TitleID(rawValue: "euronews"), articleID: "a2", at: now))

        // Sessions: a refresh token, and a reader's session with its device name.
        let refresh = try store.createSession(accountID: ada.id, lifetime: 30 * day)
        let reader = try store.startSession(accountID: ada.id, lifetime: 30 * day, deviceName: "Ada's phone", maximum: 5)

        // Gifts and a gift read.
        let gift = Gift(id: "gift-1", accountID: ada.id, titleID: TitleID(rawValue: "euronews"), articleID: "a1", createdAt: now,
                        expiresAt: now.addingTimeInterval(7 * day))
        #expect(try store.createGift(gift, limit: 5) == .created(used: 1))
        #expect(try store.recordGiftRead(gift, subject: .device("dev-2"), at: now))

        // Mail and links, the sign-in throttle.
        var verifyToken = ""
        _ = try store.issueEmailLink(accountID: bob.id, purpose: .verifyEmail, lifetime: day, actor: f.admin) { account, token in
            verifyToken = token
            return OutgoingMail(recipient: account.email, subject: "Confirm", body: "link #token=\(token)")
        }
        try store.recordSignInFailure(keys: [("email:bob", 600, { _ in 60 })], at: now)
        // A stored rate limit's bucket.
        #expect(try store.takeRateToken(StoredRateLimit(scope: "export", burst: 3, interval: 3_600), key: ada.id.rawValue) == nil)
        // An email change's undo link: Ada moves to a confirmed address and back.
        _ = try store.changeEmail(accountID: ada.id, to: try EmailAddress("ada@new.example"), confirmed: true, actor: f.admin)
        var undoToken = ""
        _ = try store.changeEmail(accountID: ada.id, to: try EmailAddress("ada@example.com"), confirmed: true, actor: f.admin, offerUndo: true) { previous, token in
            undoToken = token ?? ""
            return OutgoingMail(recipient: previous.email, subject: "Changed", body: "undo #token=\(undoToken)")
        }

        // Billing: a mapped product, a linked customer, an applied subscription event.
        _ = try store.mapBillingProduct(provider: .stripe, externalID: "price_all", planID: PlanID(rawValue: "all"), actor: f.admin)
        _ = try store.publishPolicy(revision: "0123456789abcdef", files: ["paywall.policy": "defaults { access teaser }"], author: "ada", note: "copied")
        _ = try store.linkBillingCustomer(provider: .stripe, customer: "cus_1", accountID: bob.id, actor: f.admin)
        let change = BillingChange(
            provider: .stripe, eventID: "evt_1", type: "customer.subscription.created", occurredAt: now, customer: "cus_1",
            subscription: SubscriptionState(id: "sub_1", products: ["price_all"], status: .active, providerStatus: "active",
                                            periodEnd: now.addingTimeInterval(30 * day)))
        #expect(try store.applyBilling(change).outcome == .applied)

        // The web forms' key every server shares.
        #expect(try store.siteSecret("web-forms").count == 32)

        // An admin's tokens revoked.
        try store.revokeAdminTokens(.subject("mallory", issuedUntil: now), keepUntil: now.addingTimeInterval(day), actor: f.admin)
        try store.revokeAdminTokens(.token(id: "revoked-jti"), keepUntil: now.addingTimeInterval(day), actor: f.admin)

        // An account deleted with its membership: SQLite's AUTOINCREMENT keeps its id used.
        let gone = try f.account("gone@example.com")
        let goneMembership = try store.grantMembership(
            accountID: gone.id, planID: PlanID(rawValue: "all"), periodEnd: now.addingTimeInterval(day), source: .admin, actor: f.admin)
        try store.deleteAccount(id: gone.id, actor: f.admin)

        return Seeded(ada: try #require(try store.account(id: ada.id)), bob: bob, refreshToken: refresh.token, readerToken: reader.token, verifyToken: verifyToken, undoToken: undoToken,
                      deletedMembershipID: goneMembership.id)
    }

    @Test("every table is copied; counts, the audit chain and every answer are the same; new rows get fresh ids", arguments: TestBackend.postgresOnly)
    func copiesEverything(backend: TestBackend) throws {
        let source = try StoreFixture(backend: .sqlite)
        let seeded = try populate(source)
        let target = try StoreFixture(backend: backend)
        let counts = try source.store.rowCounts()
        // The test fills every table, so a table a new migration adds must be filled here too.
        #expect(counts.filter { $0.value == 0 }.keys.sorted() == [])

        let report = try source.store.copy(to: target.store)

        #expect(report.source == source.store.location && report.target == target.store.location)
        #expect(report.migrations == Store.knownMigrations)
        #expect(try target.store.rowCounts() == counts)
        #expect(Dictionary(uniqueKeysWithValues: report.tables.map { ($0.table, $0.rows) }) == counts)
        #expect(report.totalRows == counts.values.reduce(0, +))
        // Parents before children.
        let position = Dictionary(uniqueKeysWithValues: report.tables.enumerated().map { ($1.table, $0) })
        for (child, parent) in [("credentials", "accounts"), ("plan_titles", "plans"), ("plan_titles", "titles"),
                                ("membership_events", "memberships"), ("billing_subscriptions", "memberships")] {
            #expect(try #require(position[parent]) < #require(position[child]), "\(parent) before \(child)")
        }

        // The audit log: the same entries, the same chain on both sides.
        let sourceChain = try source.store.read { try Store.auditChain($0) }
        let targetChain = try target.store.read { try Store.auditChain($0) }
        #expect(report.auditEntries == counts["audit_log"] && report.auditEntries == sourceChain.entries)
        #expect(report.auditDigest == sourceChain.digest.map { String(format: "%02x", $0) }.joined())
        #expect(targetChain.digest == sourceChain.digest && targetChain.lastID == report.lastAuditID)
        #expect(try target.store.auditEntries(limit: 1000) == source.store.auditEntries(limit: 1000))

        // The same answers through the target.
        let ada = seeded.ada, bob = seeded.bob
        #expect(try target.store.account(email: EmailAddress("ADA@example.com")) == ada)
        #expect(try target.store.account(email: EmailAddress("bob.smith@example.com")) == bob)
        #expect(try target.store.passwordHash(accountID: ada.id) == source.store.passwordHash(accountID: ada.id))
        #expect(try target.store.siteSecret("web-forms") == source.store.siteSecret("web-forms"), "the copy keeps the forms open in browsers valid")
        #expect(try target.store.titles() == source.store.titles())
        #expect(try target.store.plans() == source.store.plans())
        #expect(try target.store.memberships(accountID: ada.id) == source.store.memberships(accountID: ada.id))
        #expect(try target.store.memberships(accountID: bob.id) == source.store.memberships(accountID: bob.id))
        let adaMembership = try #require(try source.store.memberships(accountID: ada.id).first)
        #expect(try target.store.membershipHistory(id: adaMembership.id) == source.store.membershipHistory(id: adaMembership.id))
        #expect(try target.store.trial(accountID: bob.id) == source.store.trial(accountID: bob.id))
        #expect(try !target.store.isTrialEligible(email: EmailAddress("BOB.SMITH@example.com")))
        for subject in [MeterSubject.account(ada.id), .device("dev-1")] {
            #expect(try target.store.meterUsage(subject: subject, window: 30 * day) == source.store.meterUsage(subject: subject, window: 30 * day))
        }
        #expect(try target.store.hasRead(subject: .account(ada.id), title: TitleID(rawValue: "euronews"), article: "a1", window: day))
        #expect(try target.store.gift(id: "gift-1") == source.store.gift(id: "gift-1"))
        #expect(try target.store.isAdminTokenRevoked(tokenID: "t", subject: "mallory", issuedAt: source.clock.now()))
        #expect(try !target.store.isAdminTokenRevoked(tokenID: "t", subject: "alice", issuedAt: source.clock.now()))
        #expect(try target.store.isAdminTokenRevoked(tokenID: "revoked-jti", subject: "alice", issuedAt: source.clock.now()))
        #expect(try target.store.billingSubscriptions(accountID: bob.id) == source.store.billingSubscriptions(accountID: bob.id))
        #expect(try target.store.billingEvents() == source.store.billingEvents())
        #expect(try target.store.billingMappings() == source.store.billingMappings())
        #expect(try target.store.activeSessions(accountID: ada.id) == source.store.activeSessions(accountID: ada.id))
        #expect(try target.store.sessionsInUse(accountID: ada.id) == source.store.sessionsInUse(accountID: ada.id))
        #expect(try target.store.signInBlockedUntil(keys: ["email:bob"], at: source.clock.now())
            == source.store.signInBlockedUntil(keys: ["email:bob"], at: source.clock.now()))
        // `sessions.seq` (PostgreSQL's stand-in for SQLite's rowid) came from the rowid.
        let rowids = try source.store.read { try $0.fetchValues(Int64.self, "SELECT rowid FROM sessions ORDER BY id") }
        let seqs = try target.store.read { try $0.fetchValues(Int64.self, "SELECT seq FROM sessions ORDER BY id") }
        #expect(seqs == rowids)

        // Tokens hashed at rest still work.
        guard case .rotated = try target.store.refreshSession(token: seeded.refreshToken, lifetime: day) else {
            Issue.record("the copied refresh token did not rotate")
            return
        }
        #expect(try target.store.sessionInUse(token: seeded.readerToken) != nil)
        #expect(try target.store.emailLinkAccount(token: seeded.verifyToken, purpose: .verifyEmail) == bob.id)
        #expect(try target.store.emailRevertAddress(token: seeded.undoToken) == "ada@new.example")

        // New rows get fresh ids: every identity sequence moved past the copied ids (and
        // past the id of a membership deleted before the copy).
        let lastAudit = try #require(report.lastAuditID)
        try target.store.recordAudit(actor: target.admin, action: "test.after-copy", target: "db")
        #expect(try target.store.auditEntries(limit: 1).first?.id == lastAudit + 1)
        try target.plan("sports")
        let granted = try target.store.grantMembership(
            accountID: bob.id, planID: PlanID(rawValue: "sports"), periodEnd: target.clock.now().addingTimeInterval(day), source: .admin, actor: target.admin)
        #expect(granted.id == seeded.deletedMembershipID + 1)
        try target.store.recordRead(ArticleRead(subject: .device("dev-9"), titleID: TitleID(rawValue: "the-daily"), articleID: "d9", at: target.clock.now()))
        _ = try target.store.startTrial(accountID: ada.id, duration: day, actor: target.admin)
        #expect(try target.store.recordGiftRead(try #require(try target.store.gift(id: "gift-1")), subject: .device("dev-3"), at: target.clock.now()))
        let newSession = try target.store.createSession(accountID: bob.id, lifetime: day)
        let newSeq = try target.store.read { try $0.fetchValue(Int64.self, "SELECT seq FROM sessions WHERE id = ?", [newSession.session.id]) }
        #expect(try #require(newSeq) > rowids.max() ?? 0)
    }

    @Test("a target with any row is refused and nothing is written", arguments: TestBackend.postgresOnly)
    func refusesNonEmptyTarget(backend: TestBackend) throws {
        let source = try StoreFixture(backend: .sqlite)
        _ = try populate(source)
        let target = try StoreFixture(backend: backend)
        try target.account("someone@example.com")
        let before = try target.store.rowCounts()

        let error = try #require(throws: StoreError.self) { try source.store.copy(to: target.store) }
        guard case let .copyRefused(.targetNotEmpty(location, tables)) = error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(location == target.store.location)
        #expect(Set(tables) == Set(before.filter { $0.value > 0 }.keys) && tables.contains("accounts"))
        #expect(error.description.contains("not empty") && error.description.contains("accounts"))
        #expect(try target.store.rowCounts() == before)
    }

    @Test("a copy that fails half-way writes nothing: one transaction", arguments: TestBackend.postgresOnly)
    func failureRollsBack(backend: TestBackend) throws {
        let source = try StoreFixture(backend: .sqlite)
        _ = try populate(source)
        // A value PostgreSQL refuses (SQLite keeps text in an INTEGER column), in a table
        // copied after accounts and the audit log.
        try source.store.pool.write { db in try db.execute(sql: "UPDATE titles SET created_at = 'yesterday' WHERE id = 'the-daily'") }
        let target = try StoreFixture(backend: backend)

        let error = try #require(throws: StoreError.self) { try source.store.copy(to: target.store) }
        guard case .postgres = error else {
            Issue.record("expected PostgreSQL's refusal of the value, got \(error)")
            return
        }
        #expect(try target.store.rowCounts().values.allSatisfy { $0 == 0 })
        // Nor did the refused copy leave the target unusable: it is still empty and takes a copy.
        try source.store.pool.write { db in try db.execute(sql: "UPDATE titles SET created_at = 0 WHERE id = 'the-daily'") }
        #expect(try source.store.copy(to: target.store).totalRows == source.store.rowCounts().values.reduce(0, +))
    }

    @Test("tables larger than a page are copied whole, in order (rowid pages, WITHOUT ROWID chunks)", arguments: TestBackend.postgresOnly)
    func copiesManyPages(backend: TestBackend) throws {
        let source = try StoreFixture(backend: .sqlite) { $0.durableCommits = false }
        try source.title("euronews")
        let now = source.clock.now()
        let reads = (0..<(2 * StoreCopier.pageRows + 345)).map { index in
            ArticleRead(subject: .device("dev-\(index % 7)"), titleID: TitleID(rawValue: "euronews"), articleID: "a\(index)",
                        at: now.addingTimeInterval(Double(index)))
        }
        try source.store.recordReads(reads)
        for index in 0..<(StoreCopier.pageRows + 234) {
            try source.store.recordAudit(actor: source.admin, action: "test.entry", target: "entry:\(index)", details: ["n": "\(index)"])
        }
        // sign_in_failures is WITHOUT ROWID: read whole, inserted in chunks.
        try source.store.recordSignInFailure(
            keys: (0..<(StoreCopier.pageRows + 100)).map { ("client:\($0)", 600, { _ in 0 }) }, at: now)
        let counts = try source.store.rowCounts()
        let target = try StoreFixture(backend: backend)

        let report = try source.store.copy(to: target.store)

        #expect(try target.store.rowCounts() == counts)
        #expect(counts["reads"] == reads.count && counts["sign_in_failures"] == StoreCopier.pageRows + 100)
        #expect(report.auditEntries == counts["audit_log"])
        #expect(try target.store.read { try Store.auditChain($0) }.digest == source.store.read { try Store.auditChain($0) }.digest)
        #expect(try target.store.reads(since: .distantPast, limit: 10_000) == source.store.reads(since: .distantPast, limit: 10_000))
        let ids = try target.store.read { try $0.fetchValues(Int64.self, "SELECT id FROM reads ORDER BY id") }
        #expect(ids == Array(1...Int64(reads.count)))
    }

    @Test("schemas at different versions are refused", arguments: TestBackend.postgresOnly)
    func refusesVersionMismatch(backend: TestBackend) throws {
        let source = try StoreFixture(backend: .sqlite)
        try source.account("ada@example.com")
        // As if the file had stopped before the last migration (its record only: cheap).
        let last = try #require(Store.knownMigrations.last)
        try source.store.pool.write { db in try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = ?", arguments: [last]) }
        let target = try StoreFixture(backend: backend)

        #expect(throws: StoreError.copyRefused(.schemaVersionsDiffer(sourceOnly: [], targetOnly: [last]))) {
            try source.store.copy(to: target.store)
        }
        #expect(try target.store.rowCounts().values.allSatisfy { $0 == 0 })
    }

    @Test("a store is never copied onto itself, nor anywhere but from SQLite into PostgreSQL", arguments: TestBackend.all)
    func refusesItselfAndOtherDirections(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.account("ada@example.com")
        let before = try f.store.rowCounts()
        #expect(throws: StoreError.copyRefused(.sameDatabase(location: f.store.location))) { try f.store.copy(to: f.store) }
        let again = try f.reopen()
        defer { try? again.close() }
        #expect(throws: StoreError.copyRefused(.sameDatabase(location: f.store.location))) { try f.store.copy(to: again) }
        #expect(try f.store.rowCounts() == before)

        // SQLite into SQLite (a backup's job), PostgreSQL into anything: refused.
        let other = try StoreFixture(backend: .sqlite)
        let error = try #require(throws: StoreError.self) { try f.store.copy(to: other.store) }
        guard case .copyRefused(.unsupportedDirection) = error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(try other.store.rowCounts().values.allSatisfy { $0 == 0 })
    }

    @Test("locations are checked before anything is opened")
    func checksLocations() throws {
        let url = "postgres://paywall:secret@db.example.com/paywall"
        try Store.checkCopyLocations(from: "/data/paywall.sqlite", to: url)
        #expect(throws: StoreError.copyRefused(.sameDatabase(location: "/data/paywall.sqlite"))) {
            try Store.checkCopyLocations(from: "/data/paywall.sqlite", to: "/data/paywall.sqlite")
        }
        for (from, to) in [("/data/a.sqlite", "/data/b.sqlite"), (url, "/data/b.sqlite"), (url, url + "?search_path=other")] {
            let error = try #require(throws: StoreError.self) { try Store.checkCopyLocations(from: from, to: to) }
            guard case .copyRefused(.unsupportedDirection) = error else {
                Issue.record("unexpected \(error)")
                continue
            }
            #expect(!error.description.contains("secret"))
        }
        let same = try #require(throws: StoreError.self) { try Store.checkCopyLocations(from: url, to: url) }
        #expect(!same.description.contains("secret"))
    }
}
