import Foundation
import GRDB
import PaywallCore
import PaywallTestSupport
import Testing
@testable import PaywallStore

@Suite("Gifts, reads per title and audit filters in the store")
struct GiftStoreTests {
    @Test("v8-admin-gifts migrates a v6 database: its data kept, gifts and gift reads work, meters ignore gift reads")
    func migratesFromV6() throws {
        let folder = try TestFolder("paywall-v8")
        let path = folder.path("db.sqlite")
        do {
            let queue = try DatabaseQueue(path: path)
            try Migrations.migrator.migrate(queue, upTo: "v6-session-families")
            try queue.write { db in
                try db.execute(sql: "INSERT INTO accounts (id, email, email_key, created_at, updated_at) VALUES ('acc-1', 'ada@example.com', 'ada@example.com', 1, 1)")
                try db.execute(sql: "INSERT INTO titles (id, name, publisher, created_at) VALUES ('euronews', 'Euronews', 'E', 1)")
                try db.execute(sql: "INSERT INTO reads (subject, title_id, article_id, read_at) VALUES ('account:acc-1', 'euronews', 'a1', 1000)")
            }
            try queue.close()
        }
        let store = try Store(path: path)
        #expect(try store.appliedMigrations().contains("v8-admin-gifts") && store.appliedMigrations().contains("v9-gift-reads-by-gift"))
        #expect(try store.health().isHealthy)
        let account = AccountID(rawValue: "acc-1")
        let title = TitleID(rawValue: "euronews")
        let at = Date(timeIntervalSince1970: 1_767_225_600)
        let gift = Gift(id: "g1", accountID: account, titleID: title, articleID: "a2", createdAt: at, expiresAt: at.addingTimeInterval(7 * 86_400))
        #expect(try store.createGift(gift, limit: 1) == .created(used: 1))
        var second = gift
        second.id = "g2"
        #expect(try store.createGift(second, limit: 1) == .limitReached(used: 1))
        #expect(try store.gift(id: "g2") == nil)
        #expect(try store.gift(id: "g1") == gift)
        #expect(try store.recordGiftRead(gift, subject: .account(account), at: at))
        #expect(try store.recordGiftRead(gift, subject: nil, at: at))
        // Again, by the same readers: counted once each (a loop over a link pays nothing more).
        #expect(try !store.recordGiftRead(gift, subject: .account(account), at: at.addingTimeInterval(60)))
        #expect(try !store.recordGiftRead(gift, subject: nil, at: at.addingTimeInterval(60)))
        // The meter counts the old read only: gift reads are not in it.
        #expect(try store.meterUsage(subject: .account(account), window: 1e10, at: at).used == 1)
        let counts = try store.readsByTitle(from: Date(timeIntervalSince1970: 0), to: at.addingTimeInterval(1), title: nil)
        #expect(counts == [TitleReadCounts(titleID: title, reads: 1, readers: 1, articles: 1, giftReads: 2, giftArticles: 1)])
        #expect(try store.auditEntries(filter: AuditFilter(action: "gift."), limit: 10).map(\.action) == ["gift.create"])
        // Deleting the giver withdraws the gift; the gift reads (what publishers are paid on) stay.
        try store.deleteAccount(id: account, actor: .system)
        #expect(try store.gift(id: "g1") == nil)
        #expect(try store.readsByTitle(from: Date(timeIntervalSince1970: 0), to: at.addingTimeInterval(1), title: title).first?.giftReads == 2)
    }

    @Test("the reads report counts a reader's article once in a period, however often re-read", arguments: TestBackend.all)
    func reportCountsRereadsOnce(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        _ = try f.title("euronews")
        let title = TitleID(rawValue: "euronews")
        let (ada, bob) = (try f.account("ada@example.com"), try f.account("bob@example.com"))
        let at = f.clock.now()
        var reads = (0..<5).map { ArticleRead(subject: .account(ada.id), titleID: title, articleID: "a1", at: at.addingTimeInterval(Double($0))) }
        reads.append(ArticleRead(subject: .account(ada.id), titleID: title, articleID: "a2", at: at))
        reads.append(ArticleRead(subject: .account(bob.id), titleID: title, articleID: "a1", at: at))
        try f.store.recordReads(reads)
        let counts = try f.store.readsByTitle(from: at, to: at.addingTimeInterval(60), title: title)
        #expect(counts == [TitleReadCounts(titleID: title, reads: 3, readers: 2, articles: 2, giftReads: 0, giftArticles: 0)])
    }

    @Test("a gift for an unknown account or title is refused, nothing stored", arguments: TestBackend.all)
    func refused(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        try f.title("euronews")
        let at = f.clock.now()
        let before = try f.snapshot()
        #expect(throws: StoreError.titleNotFound("nope")) {
            try f.store.createGift(Gift(id: "g", accountID: account.id, titleID: TitleID(rawValue: "nope"), articleID: "a", createdAt: at, expiresAt: at), limit: 5)
        }
        #expect(throws: StoreError.accountNotFound("acc-x")) {
            try f.store.createGift(Gift(id: "g", accountID: AccountID(rawValue: "acc-x"), titleID: TitleID(rawValue: "euronews"), articleID: "a", createdAt: at, expiresAt: at), limit: 5)
        }
        #expect(try f.snapshot() == before)
    }

    @Test("the monthly count is by calendar month (UTC)")
    func months() {
        let (start, end) = Gift.month(of: Date(timeIntervalSince1970: 1_769_904_000 - 1))  // 2026-01-31T23:59:59Z
        #expect(start == Date(timeIntervalSince1970: 1_767_225_600))
        #expect(end == Date(timeIntervalSince1970: 1_769_904_000))
    }

    @Test("audit filters: actor, action prefix without wildcards, time, keyset paging", arguments: TestBackend.all)
    func auditFilters(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        try f.store.recordAudit(actor: .admin("bob"), action: "x_y", target: "t")
        try f.store.recordAudit(actor: .admin("bob"), action: "xzy", target: "t")
        #expect(try f.store.auditEntries(filter: AuditFilter(actor: "admin:bob"), limit: 10).count == 2)
        #expect(try f.store.auditEntries(filter: AuditFilter(action: "x_y"), limit: 10).count == 1, "no LIKE: '_' is not a wildcard")
        #expect(try f.store.auditEntries(filter: AuditFilter(action: "title."), limit: 10).map(\.action) == ["title.add"])
        let all = try f.store.auditEntries(filter: AuditFilter(), limit: 10)
        #expect(try f.store.auditEntries(filter: AuditFilter(beforeID: all[0].id), limit: 10) == Array(all.dropFirst()))
        #expect(try f.store.auditEntries(filter: AuditFilter(since: f.clock.now().addingTimeInterval(1)), limit: 10).isEmpty)
    }
}
