import Foundation
import Testing
import PaywallCore
import PostgresNIO
@testable import PaywallStore
import PaywallTestSupport

@Suite("Accounts and catalog")
struct AccountStoreTests {
    @Test("create, then find by id, by email in any case, and by reference", arguments: TestBackend.all)
    func createAndFind(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let created = try f.store.createAccount(email: EmailAddress(" Ada@Example.com "), displayName: "Ada", passwordHash: "$h", actor: f.admin)
        #expect(created.email == "Ada@Example.com")
        #expect(try f.store.account(id: created.id) == created)
        #expect(try f.store.account(email: EmailAddress("ADA@example.COM")) == created)
        #expect(try f.store.account(matching: "ada@example.com") == created)
        #expect(try f.store.account(matching: created.id.rawValue.uppercased()) == created)
        #expect(try f.store.passwordHash(accountID: created.id) == "$h")
        #expect(throws: StoreError.accountNotFound("nobody@example.com")) { try f.store.account(matching: "nobody@example.com") }
        #expect(try f.store.account(emailKey: "") == nil)
        #expect(try f.store.meterUsage(subject: .device(""), window: 60).used == 0)
        let audit = try f.store.auditEntries()
        #expect(audit.first?.action == "account.create")
        #expect(audit.first?.target == "account:\(created.id)")
        #expect(audit.first?.actor == f.admin)
    }

    @Test("a duplicate email, in another case, is refused and writes nothing", arguments: TestBackend.all)
    func duplicate(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.account("ada@example.com")
        let before = try f.snapshot()
        #expect(throws: StoreError.duplicateEmail("ADA@example.com")) { try f.account("ADA@example.com") }
        #expect(try f.snapshot() == before)
    }

    @Test("listing pages in creation order", arguments: TestBackend.all)
    func list(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        for index in 0..<5 {
            try f.account("reader\(index)@example.com")
            f.clock.advance(by: 1)
        }
        #expect(try f.store.accounts(limit: 2, offset: 0).map(\.email) == ["reader0@example.com", "reader1@example.com"])
        #expect(try f.store.accounts(limit: 10, offset: 4).map(\.email) == ["reader4@example.com"])
        #expect(try f.store.accountCount() == 5)
    }

    @Test("search by email prefix: exactly the keys that start with it, in email order, through an index", arguments: TestBackend.all)
    func emailPrefix(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        for email in ["ada@example.com", "Ada.Lovelace@example.org", "adam@example.net", "adb@example.com", "bob@example.com", "ad@example.com"] {
            try f.account(email)
        }
        #expect(try f.store.accounts(emailPrefix: "ada", limit: 10).map(\.email) == ["Ada.Lovelace@example.org", "ada@example.com", "adam@example.net"])
        #expect(try f.store.accounts(emailPrefix: "ada", limit: 2).map(\.email) == ["Ada.Lovelace@example.org", "ada@example.com"])
        #expect(try f.store.accounts(emailPrefix: "ad", limit: 10).count == 5)
        #expect(try f.store.accounts(emailPrefix: "ada@example.com", limit: 10).map(\.email) == ["ada@example.com"])
        #expect(try f.store.accounts(emailPrefix: "zed", limit: 10).isEmpty)
        // Served by an index, not a scan of every account.
        let plan: String
        if let postgres = f.store.backend as? PostgresBackend {
            plan = try postgres.connections.with { connection in
                _ = try connection.query(PostgresQuery(unsafeSQL: "SET enable_seqscan = off"), logger: PostgresSQL.logger).wait()
                defer { _ = try? connection.query(PostgresQuery(unsafeSQL: "RESET enable_seqscan"), logger: PostgresSQL.logger).wait() }
                return try connection.query(PostgresQuery(unsafeSQL: #"EXPLAIN SELECT id FROM accounts WHERE email_key COLLATE "C" >= 'ada' AND email_key COLLATE "C" < 'ada\#u{7F}' ORDER BY email_key COLLATE "C" LIMIT 10"#), logger: PostgresSQL.logger).wait()
                    .rows.map { try $0.decode(String.self) }.joined(separator: "\n")
            }
            #expect(plan.contains("accounts_by_email_prefix"), "\(plan)")
        } else {
            plan = try f.store.read { db in
                try db.fetchAll("EXPLAIN QUERY PLAN SELECT id FROM accounts WHERE email_key >= ? AND email_key < ? ORDER BY email_key LIMIT 10", ["ada", "ada\u{7F}"])
                    .map { row -> String in row[3] }.joined(separator: "\n")
            }
            #expect(plan.contains("USING INDEX") && !plan.contains("TEMP B-TREE"), "\(plan)")
        }
    }

    @Test("password and name changes update the account and the audit log", arguments: TestBackend.all)
    func updates(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        f.clock.advance(by: 60)
        try f.store.setPasswordHash(accountID: account.id, hash: "$new", actor: f.admin)
        try f.store.setDisplayName(accountID: account.id, displayName: "Ada L.", actor: f.admin)
        let updated = try #require(try f.store.account(id: account.id))
        #expect(updated.displayName == "Ada L.")
        #expect(updated.updatedAt == account.createdAt.addingTimeInterval(60))
        #expect(try f.store.passwordHash(accountID: account.id) == "$new")
        #expect(try f.store.auditEntries(target: "account:\(account.id)").map(\.action) == ["account.rename", "account.set-password", "account.create"])
        let ghost = AccountID.generate()
        #expect(throws: StoreError.accountNotFound(ghost.rawValue)) { try f.store.setPasswordHash(accountID: ghost, hash: "$x", actor: f.admin) }
    }

    @Test("a retired title leaves its plans, is refused by plans and checks, keeps its reads; audited; restored it stays out of the plans", arguments: TestBackend.all)
    func retireTitle(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        for id in ["euronews", "le-monde"] { try f.title(id) }
        let euronews = TitleID(rawValue: "euronews"), leMonde = TitleID(rawValue: "le-monde")
        try f.plan("both", bundle: .titles([euronews, leMonde]))
        try f.plan("euronews-only", bundle: .titles([euronews]))
        try f.plan("all")
        let account = try f.account("ada@example.com")
        try f.store.recordRead(ArticleRead(subject: .account(account.id), titleID: euronews, articleID: "a1", at: f.clock.now()))
        f.clock.advance(by: 60)

        let (title, left, emptied) = try f.store.retireTitle(id: euronews, actor: f.admin)
        #expect(title.retiredAt == Store.stored(f.clock.now()) && left.map(\.rawValue) == ["both", "euronews-only"] && emptied.map(\.rawValue) == ["euronews-only"])
        #expect(try f.store.plan(id: PlanID(rawValue: "both"))?.bundle == .titles([leMonde]))
        #expect(try f.store.plan(id: PlanID(rawValue: "all"))?.bundle == .all)
        #expect(throws: StoreError.titleRetired("euronews")) { try f.store.catalogTitle(id: euronews) }
        #expect(try f.store.catalogTitle(id: leMonde).id == leMonde)
        #expect(try f.store.auditEntries(limit: 1).first?.action == "title.retire")
        // Its reads stay, for the publisher's report.
        #expect(try f.store.readsByTitle(from: f.clock.now().addingTimeInterval(-3_600), to: f.clock.now(), title: euronews).first?.reads == 1)

        // Again: nothing written. Plans refuse it, with nothing written.
        let before = try f.snapshot()
        #expect(try f.store.retireTitle(id: euronews, actor: f.admin).leftPlans.isEmpty)
        #expect(throws: StoreError.titleRetired("euronews")) {
            try f.store.updatePlan(id: PlanID(rawValue: "both"), name: nil, bundle: .titles([euronews, leMonde]), actor: f.admin)
        }
        #expect(throws: StoreError.titleRetired("euronews")) {
            try f.store.addPlan(id: PlanID(rawValue: "new"), name: "New", period: .month, bundle: .titles([euronews]), actor: f.admin)
        }
        #expect(throws: StoreError.titleNotFound("nope")) { try f.store.retireTitle(id: TitleID(rawValue: "nope"), actor: f.admin) }
        #expect(try f.snapshot() == before)

        let restored = try f.store.restoreTitle(id: euronews, actor: f.admin)
        #expect(try restored.retiredAt == nil && f.store.title(id: euronews)?.isRetired == false)
        #expect(try f.store.plan(id: PlanID(rawValue: "both"))?.bundle == .titles([leMonde]), "plans do not take it back by themselves")
        #expect(try f.store.auditEntries(limit: 1).first?.action == "title.restore")
        #expect(try f.store.titles().map(\.isRetired) == [false, false])
    }

    @Test("deleting removes the account, its credentials, memberships, sessions and sign-in throttle rows; its reads stay in the reads report under a pseudonym", arguments: TestBackend.all)
    func delete(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        try f.plan("all")
        let account = try f.account("ada@example.com")
        _ = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "all"), periodEnd: f.clock.now().addingTimeInterval(86_400), source: .admin, actor: f.admin)
        _ = try f.store.createSession(accountID: account.id, tokenHash: [1, 2, 3], lifetime: 3_600)
        try f.store.recordRead(ArticleRead(subject: .account(account.id), titleID: TitleID(rawValue: "euronews"), articleID: "a1", at: f.clock.now()))
        try f.store.recordRead(ArticleRead(subject: .account(account.id), titleID: TitleID(rawValue: "euronews"), articleID: "a2", at: f.clock.now()))
        try f.store.recordRead(ArticleRead(subject: .device("dev-1"), titleID: TitleID(rawValue: "euronews"), articleID: "a1", at: f.clock.now()))
        _ = try f.store.claimSignInAttempt(keys: [(Store.signInThrottleKey(email: EmailAddress(stored: "ada@example.com")), 900, { _ in 0 }), (Store.reverificationThrottleKey(account.id), 900, { _ in 0 })], at: f.clock.now())
        let month = (from: f.clock.now().addingTimeInterval(-86_400), to: f.clock.now().addingTimeInterval(86_400))
        let report = try f.store.readsByTitle(from: month.from, to: month.to, title: nil)
        // A membership the caller's test picks (read in the deletion's own transaction)
        // keeps the account whole, and comes back.
        let before = try f.snapshot()
        let blocker = try f.store.deleteAccount(id: account.id, actor: f.admin, unlessAny: { $0.planID.rawValue == "all" })
        guard case let .membership(membership)? = blocker else { Issue.record("not kept for the membership: \(String(describing: blocker))"); return }
        #expect(membership.planID.rawValue == "all")
        #expect(try f.snapshot() == before, "nothing deleted, nothing audited")
        #expect(try f.store.deleteAccount(id: account.id, actor: f.admin) == nil)
        let counts = try f.snapshot()
        for table in ["accounts", "credentials", "memberships", "membership_events", "sessions", "sign_in_failures"] {
            #expect(counts[table] == 0, "\(table) still has rows")
        }
        // The reads report of the month is what it was (publishers are paid on it): the
        // reads stay, under one pseudonym, none the account's any more.
        #expect(try f.store.readsByTitle(from: month.from, to: month.to, title: nil) == report)
        #expect(counts["reads"] == 3)
        #expect(try f.store.reads(subject: .account(account.id), limit: 10).isEmpty)
        #expect(try f.store.auditEntries().first?.action == "account.delete")
        #expect(throws: StoreError.accountNotFound(account.id.rawValue)) { try f.store.deleteAccount(id: account.id, actor: f.admin) }
    }

    @Test("deleting drops the account's unsent mail, keeps sent mail's address without its body, and unlinks its gift reads", arguments: TestBackend.all)
    func deleteCleansUp(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let ada = try f.account("ada@example.com")
        let giver = try f.account("max@example.com")
        let now = f.clock.now()
        for purpose in [EmailLinkPurpose.verifyEmail, .resetPassword] {
            _ = try f.store.issueEmailLink(accountID: ada.id, purpose: purpose, lifetime: 600, actor: f.admin) { account, token in
                OutgoingMail(recipient: account.email, subject: purpose.rawValue, body: "secret \(token)")
            }
        }
        _ = try f.store.issueEmailLink(accountID: giver.id, purpose: .verifyEmail, lifetime: 600, actor: f.admin) { account, token in
            OutgoingMail(recipient: account.email, subject: "giver's", body: "giver's \(token)")
        }
        // One of Ada's two sent, one waiting.
        let claimed = try f.store.claimMail(limit: 1, lease: 60)
        try f.store.markMailSent(id: try #require(claimed.first).id)
        let gift = Gift(id: "gift-1", accountID: giver.id, titleID: TitleID(rawValue: "euronews"), articleID: "a1", createdAt: now, expiresAt: now.addingTimeInterval(86_400))
        #expect(try f.store.createGift(gift, limit: 5) == .created(used: 1))
        #expect(try f.store.recordGiftRead(gift, subject: .account(ada.id), at: now))
        #expect(try f.store.giftReads(subject: .account(ada.id), limit: 10).map(\.articleID) == ["a1"])

        #expect(try f.store.deleteAccount(id: ada.id, actor: f.admin) == nil)
        let left = try f.store.outbox(limit: 10)
        // The waiting message is gone: nothing will deliver it.
        #expect(left.map(\.subject).sorted() == ["giver's", EmailLinkPurpose.verifyEmail.rawValue].sorted())
        let sent = try #require(left.first { $0.recipient == "ada@example.com" })
        #expect(sent.sentAt != nil && sent.body.isEmpty)
        #expect(try f.store.claimMail(limit: 10, lease: 60).map(\.subject) == ["giver's"])
        #expect(try f.store.mail(accountID: ada.id, limit: 10).isEmpty)
        // The per-address budget still counts what was sent.
        #expect(try f.store.mailCount(recipient: "ada@example.com", since: now.addingTimeInterval(-60)) == 1)
        // The gift read still counts for the title, no longer as Ada's, nor as the anonymous
        // readers' one row: the first anonymous reader of the gift is still counted.
        #expect(try f.store.giftReads(subject: .account(ada.id), limit: 10).isEmpty)
        #expect(try f.snapshot()["gift_reads"] == 1)
        #expect(try f.store.recordGiftRead(gift, subject: nil, at: now))
        #expect(try f.snapshot()["gift_reads"] == 2)
        // A gift read for the deleted account (a check that raced the deletion) is refused.
        #expect(throws: StoreError.accountNotFound(ada.id.rawValue)) { try f.store.recordGiftRead(gift, subject: .account(ada.id), at: now) }
    }

    @Test("a provider's subscription still renewing keeps the account when asked, whatever its membership says", arguments: TestBackend.all)
    func deleteKeptForLiveSubscription(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        try f.plan("all")
        let ada = try f.account("ada@example.com")
        let now = f.clock.now()
        _ = try f.store.mapBillingProduct(provider: .stripe, externalID: "price_all", planID: PlanID(rawValue: "all"), actor: f.admin)
        _ = try f.store.linkBillingCustomer(provider: .stripe, customer: "cus_1", accountID: ada.id, actor: f.admin)
        func apply(_ event: String, _ state: SubscriptionState, at offset: TimeInterval) throws {
            let change = BillingChange(provider: .stripe, eventID: event, type: "customer.subscription.updated", occurredAt: now.addingTimeInterval(offset), customer: "cus_1", subscription: state)
            #expect(try f.store.applyBilling(change).outcome == .applied)
        }
        // Unpaid: no access, but Stripe keeps the subscription open and charges it again.
        try apply("evt_1", SubscriptionState(id: "sub_1", products: ["price_all"], status: .expired, providerStatus: "unpaid", periodEnd: now.addingTimeInterval(-60)), at: 1)
        let before = try f.snapshot()
        guard case let .subscription(provider, id)? = try f.store.deleteAccount(id: ada.id, actor: f.admin, unlessSubscriptionRenews: true) else {
            Issue.record("deleted with a live subscription")
            return
        }
        #expect(provider == "stripe" && id == "sub_1")
        #expect(try f.snapshot() == before, "nothing deleted, nothing audited")
        // An App Store subscription that expired (Apple marks none final) does not keep it.
        _ = try f.store.mapBillingProduct(provider: .apple, externalID: "com.example.all", planID: PlanID(rawValue: "all"), actor: f.admin)
        _ = try f.store.linkBillingCustomer(provider: .apple, customer: "2000000111", accountID: ada.id, actor: f.admin)
        let apple = BillingChange(provider: .apple, eventID: "apple-1", type: "EXPIRED", occurredAt: now.addingTimeInterval(1), customer: "2000000111",
                                  subscription: SubscriptionState(id: "2000000111", products: ["com.example.all"], status: .expired, providerStatus: "EXPIRED", periodEnd: now.addingTimeInterval(-60)))
        #expect(try f.store.applyBilling(apple).outcome == .applied)
        guard case .subscription(provider: "stripe", id: "sub_1")? = try f.store.deleteAccount(id: ada.id, actor: f.admin, unlessSubscriptionRenews: true) else {
            Issue.record("not kept for the Stripe subscription alone")
            return
        }
        // Set to cancel at the period's end: it will not renew, the account may go.
        try apply("evt_2", SubscriptionState(id: "sub_1", products: ["price_all"], status: .expired, providerStatus: "unpaid", periodEnd: now.addingTimeInterval(-60), cancelAtPeriodEnd: true), at: 2)
        #expect(try f.store.deleteAccount(id: ada.id, actor: f.admin, unlessSubscriptionRenews: true) == nil)
        #expect(try f.store.account(id: ada.id) == nil)
    }

    @Test("titles and plans: duplicates and unknown titles are refused and write nothing", arguments: TestBackend.all)
    func catalog(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        try f.title("the-daily")
        let plan = try f.plan("news", bundle: .titles([TitleID(rawValue: "euronews"), TitleID(rawValue: "the-daily")]))
        #expect(try f.store.plan(id: plan.id)?.bundle == .titles([TitleID(rawValue: "euronews"), TitleID(rawValue: "the-daily")]))
        try f.plan("everything")
        #expect(try f.store.plan(id: PlanID(rawValue: "everything"))?.bundle == .all)
        #expect(try f.store.titles().map(\.id.rawValue) == ["euronews", "the-daily"])
        #expect(try f.store.plans().map(\.id.rawValue) == ["everything", "news"])

        let before = try f.snapshot()
        #expect(throws: StoreError.duplicateTitle("euronews")) { try f.title("euronews") }
        #expect(throws: StoreError.duplicatePlan("news")) { try f.plan("news") }
        #expect(throws: StoreError.titleNotFound("missing")) {
            try f.plan("bad", bundle: .titles([TitleID(rawValue: "euronews"), TitleID(rawValue: "missing")]))
        }
        #expect(throws: StoreError.emptyBundle(plan: "empty")) { try f.plan("empty", bundle: .titles([])) }
        #expect(try f.snapshot() == before)
    }

    @Test("the audit log is append-only, even to raw SQL", arguments: TestBackend.all)
    func auditAppendOnly(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        #expect(throws: (any Error).self) { try f.store.write { try $0.execute("DELETE FROM audit_log") } }
        #expect(throws: (any Error).self) { try f.store.write { try $0.execute("UPDATE audit_log SET actor = 'x'") } }
        #expect(try f.store.auditCount() == 1)
        try f.store.recordAudit(actor: f.admin, action: "token.comp", target: "account:x", details: ["days": "7"])
        #expect(try f.store.auditEntries().first?.details == #"{"days":"7"}"#)
    }
}

@Suite("Reads of a deleted account")
struct DeletedAccountReadTests {
    func read(_ account: Account, _ article: String, _ f: StoreFixture) -> ArticleRead {
        ArticleRead(subject: .account(account.id), titleID: TitleID(rawValue: "euronews"), articleID: article, at: f.clock.now())
    }

    /// The blocking form (an async test would pick the async one).
    func syncMetered(_ f: StoreFixture, _ read: ArticleRead) throws {
        _ = try f.store.recordCountedRead(read, window: 86_400, limit: 10)
    }

    @Test("no read is recorded for an account deleted before its write: metered, imported or single", arguments: TestBackend.all)
    func refusedAfterDeletion(backend: TestBackend) async throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let gone = try f.account("gone@example.com")
        let kept = try f.account("kept@example.com")
        try f.store.deleteAccount(id: gone.id, actor: f.admin)
        #expect(throws: StoreError.accountNotFound(gone.id.rawValue)) { try syncMetered(f, read(gone, "a1", f)) }
        await #expect(throws: StoreError.accountNotFound(gone.id.rawValue)) { try await f.store.recordCountedRead(read(gone, "a2", f), window: 86_400, limit: 10) }
        #expect(throws: StoreError.accountNotFound(gone.id.rawValue)) { try f.store.recordReads([read(kept, "k1", f), read(gone, "a3", f)]) }
        #expect(throws: StoreError.accountNotFound(gone.id.rawValue)) { try f.store.recordRead(read(gone, "a4", f)) }
        #expect(try f.store.readCount() == 0, "nothing of the import either")
        // The other account, and devices, read as before.
        #expect(try await f.store.recordCountedRead(read(kept, "k1", f), window: 86_400, limit: 10).outcome == .recorded(used: 1))
        try f.store.recordRead(ArticleRead(subject: .device("d1"), titleID: TitleID(rawValue: "euronews"), articleID: "d", at: f.clock.now()))
        #expect(try f.store.readCount() == 2)
    }

    @Test("metered reads racing the account's deletion: none outlives it", arguments: TestBackend.all)
    func racingDeletion(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        for round in 0..<5 {
            let account = try f.account("racer\(round)@example.com")
            let store = f.store
            let clock = f.clock
            DispatchQueue.concurrentPerform(iterations: 41) { index in
                if index == 20 {
                    try? store.deleteAccount(id: account.id, actor: .system)
                } else {
                    let read = ArticleRead(subject: .account(account.id), titleID: TitleID(rawValue: "euronews"), articleID: "r\(round)-\(index)", at: clock.now())
                    _ = try? store.recordCountedRead(read, window: 86_400, limit: 1_000)
                }
            }
            #expect(try f.store.account(id: account.id) == nil)
            #expect(try f.store.meterUsage(subject: .account(account.id), window: 86_400).used == 0, "round \(round): a read outlived the deletion")
        }
    }
}
