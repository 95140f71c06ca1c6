import Foundation
import Synchronization
import Testing
import PaywallCore
import PaywallTestSupport
@testable import PaywallStore

/// What one server makes exact stays exact when two servers (two stores, each with its own
/// connections) write the same PostgreSQL database at once. Each case races the two stores
/// from many threads; SQLite runs them too (two stores on one file: two processes' view).
@Suite("Two stores on one database")
struct SharedStoreTests {
    /// Runs `body(store, index)` `count` times at once, alternating between the stores.
    func race<T: Sendable>(_ stores: [Store], count: Int, _ body: @escaping @Sendable (Store, Int) throws -> T) -> [Result<T, any Error>] {
        let results = Mutex<[Result<T, any Error>]>([])
        DispatchQueue.concurrentPerform(iterations: count) { index in
            let result = Result { try body(stores[index % stores.count], index) }
            results.withLock { $0.append(result) }
        }
        return results.withLock { $0 }
    }

    @Test("20 checks of different articles over two stores with one unit left: exactly one counted (10 rounds)", arguments: TestBackend.all)
    func lastUnit(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let other = try f.reopen()
        defer { try? other.close() }
        let now = f.clock.now()
        for round in 0..<10 {
            let subject = MeterSubject.device("d\(round)")
            for index in 0..<2 {
                let read = ArticleRead(subject: subject, titleID: TitleID(rawValue: "euronews"), articleID: "old\(index)", at: now)
                #expect(try f.store.recordCountedRead(read, window: 86_400, limit: 3).outcome == .recorded(used: index + 1))
            }
            let outcomes = race([f.store, other], count: 20) { store, index in
                try store.recordCountedRead(ArticleRead(subject: subject, titleID: TitleID(rawValue: "euronews"), articleID: "new\(index)", at: now),
                                            window: 86_400, limit: 3).outcome
            }
            let values = outcomes.compactMap { try? $0.get() }
            #expect(values.count == 20, "no check failed: \(outcomes.filter { (try? $0.get()) == nil })")
            #expect(values.filter { $0 == .recorded(used: 3) }.count == 1, "round \(round): \(values)")
            #expect(values.filter { $0 == .exhausted(used: 3) }.count == 19)
            #expect(try other.meterUsage(subject: subject, window: 86_400).used == 3)
        }
    }

    @Test("the same article checked at once on both stores counts once", arguments: TestBackend.all)
    func sameArticleOnce(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let other = try f.reopen()
        defer { try? other.close() }
        let read = ArticleRead(subject: .device("d1"), titleID: TitleID(rawValue: "euronews"), articleID: "a", at: f.clock.now())
        let outcomes = race([f.store, other], count: 16) { store, _ in try store.recordCountedRead(read, window: 86_400, limit: 3).outcome }
        let values = outcomes.compactMap { try? $0.get() }
        #expect(values.count == 16)
        #expect(values.filter { $0 == .recorded(used: 1) }.count == 1)
        #expect(values.filter { $0 == .reread }.count == 15)
        #expect(try f.store.meterUsage(subject: .device("d1"), window: 86_400).used == 1)
    }

    @Test("one trial per person when both stores start it at once", arguments: TestBackend.all)
    func oneTrial(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let first = try f.account("ada@example.com")
        let second = try f.account("ada+again@example.com")  // the same person
        let other = try f.reopen()
        defer { try? other.close() }
        let outcomes = race([f.store, other], count: 12) { store, index in
            try store.startTrial(accountID: index % 4 < 2 ? first.id : second.id, duration: 14 * 86_400, actor: .system)
        }
        #expect(outcomes.filter { (try? $0.get()) != nil }.count == 1)
        for case let .failure(error) in outcomes {
            #expect(error as? StoreError == .trialAlreadyUsed(email: "ada@example.com") || error as? StoreError == .trialAlreadyUsed(email: "ada+again@example.com"),
                    "\(error)")
        }
        #expect(try f.snapshot()["trials"] == 1)
    }

    @Test("a monthly gift limit holds across stores", arguments: TestBackend.all)
    func giftLimit(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let member = try f.account("ada@example.com")
        try f.title("euronews")
        let other = try f.reopen()
        defer { try? other.close() }
        let now = f.clock.now()
        let outcomes = race([f.store, other], count: 16) { store, index in
            try store.createGift(Gift(id: "g\(index)", accountID: member.id, titleID: TitleID(rawValue: "euronews"), articleID: "a\(index)",
                                      createdAt: now, expiresAt: now.addingTimeInterval(86_400)), limit: 5)
        }
        let created = outcomes.filter { if case .success(.created) = $0 { true } else { false } }.count
        #expect(created == 5, "\(outcomes)")
        #expect(try f.store.giftCount(accountID: member.id, from: now.addingTimeInterval(-1), to: now.addingTimeInterval(1)) == 5)
    }

    @Test("sign-in failures counted on both stores add up exactly", arguments: TestBackend.all)
    func throttleCounts(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let other = try f.reopen()
        defer { try? other.close() }
        let now = f.clock.now()
        // Blocked for 60 s from the 30th failure on: the 30th must be seen as the 30th.
        let outcomes = race([f.store, other], count: 30) { store, _ in
            try store.recordSignInFailure(keys: [("email:ada", 600, { $0 >= 30 ? 60 : 0 })], at: now)
        }
        #expect(outcomes.allSatisfy { if case .success = $0 { true } else { false } }, "\(outcomes)")
        #expect(try f.store.read { try $0.fetchValue(Int.self, "SELECT failures FROM sign_in_failures WHERE key = 'email:ada'") } == 30)
        #expect(try other.signInBlockedUntil(keys: ["email:ada"], at: now) == now.addingTimeInterval(60))
    }

    @Test("a refresh token presented to both stores at once rotates into one successor", arguments: TestBackend.all)
    func refreshRotation(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let other = try f.reopen()
        defer { try? other.close() }
        let (token, started) = try f.store.createSession(accountID: account.id, lifetime: 30 * 86_400)
        let outcomes = race([f.store, other], count: 10) { store, _ in try store.refreshSession(token: token, lifetime: 30 * 86_400) }
        var successors: Set<String> = []
        for outcome in outcomes {
            switch try outcome.get() {
            case let .rotated(next, _), let .alreadyRotated(next, _): successors.insert(next)
            default: Issue.record("within the grace window every concurrent refresh gets the successor: \(outcome)")
            }
        }
        #expect(successors.count == 1)
        let live = try f.store.activeSessions(accountID: account.id)
        #expect(live.count == 1 && live.first?.familyID == started.familyID)
        // After the grace window the old token is reuse: the family is revoked everywhere.
        f.clock.advance(by: 60)
        #expect(try other.refreshSession(token: token, lifetime: 30 * 86_400) == .reuseDetected(familyID: started.familyID))
        #expect(try f.store.activeSessions(accountID: account.id).isEmpty)
    }

    @Test("a payment event delivered to both stores at once is applied once", arguments: TestBackend.all)
    func paymentEventOnce(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        try f.plan("news")
        _ = try f.store.mapBillingProduct(provider: .apple, externalID: "com.example.news", planID: PlanID(rawValue: "news"), actor: f.admin)
        _ = try f.store.linkBillingCustomer(provider: .apple, customer: "token-1", accountID: account.id, actor: f.admin)
        let other = try f.reopen()
        defer { try? other.close() }
        let change = BillingChange(
            provider: .apple, eventID: "uuid-1", type: "SUBSCRIBED", occurredAt: f.clock.now(), customer: "token-1",
            subscription: SubscriptionState(id: "1000", products: ["com.example.news"], status: .active, providerStatus: "SUBSCRIBED",
                                            periodEnd: f.clock.now().addingTimeInterval(86_400)))
        let outcomes = race([f.store, other], count: 12) { store, _ in try store.applyBilling(change).outcome.rawValue }
        let counted = Dictionary(grouping: outcomes.map { (try? $0.get()) ?? "error" }, by: { $0 }).mapValues(\.count)
        #expect(counted == ["applied": 1, "duplicate": 11])
        #expect(try f.store.memberships(accountID: account.id).count == 1)
    }

    /// Polls `body` until it is true or `seconds` pass.
    func eventually(_ seconds: Double = 3, _ body: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try body() { return true }
            usleep(10_000)
        }
        return try body()
    }

    @Test("facts one store caches are dropped when another store changes them", arguments: TestBackend.all)
    func cachedFactsFollowChanges(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        try f.plan("news")
        try f.title("euronews")
        let other = try f.reopen()
        defer { try? other.close() }
        #expect(eventually(15) { other.cachesFacts }, "the other store listens for changes")
        // Cached on the other store…
        #expect(try other.membershipsWithBundles(accountID: account.id).isEmpty)
        #expect(try other.isTrialEligible(email: EmailAddress("ada@example.com")))
        #expect(try other.account(id: account.id)?.displayName == nil)
        #expect(try other.title(id: TitleID(rawValue: "euronews"))?.tags == [])
        // …changed through this one: the other sees each change within moments.
        _ = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "news"), periodEnd: f.clock.now().addingTimeInterval(86_400),
                                        source: .admin, actor: f.admin)
        #expect(try eventually { try other.membershipsWithBundles(accountID: account.id).count == 1 })
        _ = try f.store.startTrial(accountID: account.id, duration: 86_400, actor: f.admin)
        #expect(try eventually { try !other.isTrialEligible(email: EmailAddress("ada@example.com")) })
        #expect(try eventually { try other.trial(accountID: account.id) != nil })
        try f.store.setDisplayName(accountID: account.id, displayName: "Ada", actor: f.admin)
        #expect(try eventually { try other.account(id: account.id)?.displayName == "Ada" })
        _ = try f.store.setTitleTags(id: TitleID(rawValue: "euronews"), tags: ["europe"], actor: f.admin)
        #expect(try eventually { try other.title(id: TitleID(rawValue: "euronews"))?.tags == ["europe"] })
    }

    @Test("a store's own change of a fact has left its cache when the write returns", arguments: TestBackend.all)
    func ownChangesAtOnce(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        for round in 0..<20 { try f.plan("plan-\(round)") }
        #expect(eventually(15) { f.store.cachesFacts })
        for round in 0..<20 {
            #expect(try f.store.membershipsWithBundles(accountID: account.id).count == round)  // cached
            _ = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "plan-\(round)"), periodEnd: f.clock.now().addingTimeInterval(86_400),
                                            source: .admin, actor: f.admin)
            #expect(try f.store.membershipsWithBundles(accountID: account.id).count == round + 1, "round \(round): the grant was not seen at once")
        }
    }

    @Test("SQLite: another process's change is seen by a read a millisecond after its commit (20 rounds)")
    func sqliteChangesWithinAMillisecond() throws {
        let f = try StoreFixture(backend: .sqlite)
        let account = try f.account("ada@example.com")
        for round in 0..<20 { try f.plan("plan-\(round)") }
        let other = try f.reopen()  // the CLI's view: its own connections to the file
        defer { try? other.close() }
        #expect(other.cachesFacts)
        for round in 0..<20 {
            #expect(try other.membershipsWithBundles(accountID: account.id).count == round)  // cached
            _ = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "plan-\(round)"), periodEnd: f.clock.now().addingTimeInterval(86_400),
                                            source: .admin, actor: f.admin)
            usleep(1_500)
            #expect(try other.membershipsWithBundles(accountID: account.id).count == round + 1, "round \(round): not seen 1.5 ms after the commit")
        }
    }

    @Test("SQLite: facts are served from the cache (a change that skips the change log is not seen)")
    func sqliteServesFromCache() throws {
        let f = try StoreFixture(backend: .sqlite)
        let account = try f.account("ada@example.com")
        #expect(try f.store.account(id: account.id)?.displayName == nil)  // cached now
        // Below the store's write path, and with its change-log entry removed: only a cache
        // can still answer the old name.
        try f.store.pool.write { db in
            try db.execute(sql: "UPDATE accounts SET display_name = 'Ada' WHERE id = ?", arguments: [account.id.rawValue])
            try db.execute(sql: "DELETE FROM facts_changes")
        }
        usleep(1_500)
        #expect(try f.store.account(id: account.id)?.displayName == nil, "served from the cache")
        try f.store.setDisplayName(accountID: account.id, displayName: "Grace", actor: f.admin)
        #expect(try f.store.account(id: account.id)?.displayName == "Grace", "the store's own write dropped it")
    }

    @Test("a fact read in a snapshot begun before a known change is not cached", arguments: TestBackend.all)
    func oldSnapshotNotCached(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let unrelated = try f.account("grace@example.com")
        let other = try f.reopen()
        defer { try? other.close() }
        #expect(eventually(15) { f.store.cachesFacts })
        try f.store.snapshot {
            // The snapshot's transaction begins (a title no one has: a cache miss reads)…
            #expect(try f.store.title(id: TitleID(rawValue: "no-such-title")) == nil)
            let before = f.store.backend.facts.generation
            // …another server changes the account, and this store learns of it meanwhile
            // (a notification; on SQLite, another check reading the change log)…
            try other.setDisplayName(accountID: account.id, displayName: "Ada", actor: f.admin)
            #expect(eventually(15) {
                onAnotherThread { _ = try? f.store.account(id: unrelated.id) }
                return f.store.backend.facts.generation > before
            })
            // …the snapshot reads the old name, which must not be cached.
            #expect(try f.store.account(id: account.id)?.displayName == nil)
        }
        #expect(try f.store.account(id: account.id)?.displayName == "Ada", "the old snapshot's value was cached")
    }

    @Test("every read in a snapshot sees one state: the ordinary reads too, not only the hot ones", arguments: TestBackend.all)
    func ordinaryReadsInSnapshot(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let other = try f.reopen()
        defer { try? other.close() }
        let (inside, sessionsInside) = try f.store.snapshot { () throws -> (Int, Int) in
            let first = try f.store.auditEntries(target: "account:\(account.id)").count
            #expect(try f.store.sessionsInUse(accountID: account.id).isEmpty)
            // Another server changes the account (an audit entry) and starts a session meanwhile…
            try other.setDisplayName(accountID: account.id, displayName: "Ada", actor: f.admin)
            _ = try other.createSession(accountID: account.id, lifetime: 3_600)
            // …which the snapshot's later reads do not see.
            #expect(try f.store.auditEntries(target: "account:\(account.id)").count == first)
            return (first, try f.store.sessionsInUse(accountID: account.id).count)
        }
        #expect(sessionsInside == 0, "a read in the snapshot saw a session started after it began")
        #expect(try f.store.auditEntries(target: "account:\(account.id)").count > inside, "after it, the change is seen")
        #expect(try f.store.sessionsInUse(accountID: account.id).count == 1)
    }

    @Test("a site secret is made once, by whichever store asks first, and every store on the database reads the same", arguments: TestBackend.all)
    func siteSecretShared(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let other = try f.reopen()
        defer { try? other.close() }
        let made = try other.siteSecret("web-forms")
        #expect(made.count == 32)
        #expect(try f.store.siteSecret("web-forms") == made)
        #expect(try other.siteSecret("web-forms") == made, "kept, not made again")
        #expect(try f.store.siteSecret("another") != made, "one per name")
    }

    /// Runs `body` on a thread of its own (not in the caller's snapshot) and waits for it.
    func onAnotherThread(_ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        Thread {
            body()
            done.signal()
        }.start()
        done.wait()
    }
}
