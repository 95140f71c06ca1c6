import Foundation
import GRDB
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport
import Testing

@Suite("Readers' accounts in the store")
struct ReaderStoreTests {
    @Test("a new account takes its device's reads in the transaction that creates it; a refused one moves nothing", arguments: TestBackend.all)
    func carriesReads(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let at = f.clock.now()
        try f.store.recordReads([
            ArticleRead(subject: .device("dev-1"), titleID: TitleID(rawValue: "euronews"), articleID: "a1", at: at),
            ArticleRead(subject: .device("dev-1"), titleID: TitleID(rawValue: "euronews"), articleID: "a2", at: at),
            ArticleRead(subject: .device("dev-2"), titleID: TitleID(rawValue: "euronews"), articleID: "a3", at: at),
        ])
        let (account, moved) = try f.store.createAccount(
            email: EmailAddress("new@example.com"), displayName: "New", passwordHash: "$scrypt$x", carryingReadsOf: "dev-1", actor: f.admin)
        #expect(moved == 2)
        #expect(try f.store.meterUsage(subject: .account(account.id), window: 86_400).used == 2)
        #expect(try f.store.meterUsage(subject: .device("dev-1"), window: 86_400).used == 0)
        #expect(try f.store.meterUsage(subject: .device("dev-2"), window: 86_400).used == 1, "another device keeps its reads")
        let audit = try f.store.auditEntries(target: "account:\(account.id)")
        #expect(audit.contains { $0.action == "meter.carry-over" && $0.details.contains("\"reads\":\"2\"") })

        let before = try f.snapshot()
        #expect(throws: StoreError.duplicateEmail("NEW@example.com")) {
            try f.store.createAccount(email: EmailAddress("NEW@example.com"), displayName: nil, passwordHash: "$scrypt$x", carryingReadsOf: "dev-2", actor: f.admin)
        }
        #expect(try f.snapshot() == before)
        #expect(try f.store.meterUsage(subject: .device("dev-2"), window: 86_400).used == 1)
    }

    @Test("moving a device's reads to an account is audited; an unknown account moves nothing", arguments: TestBackend.all)
    func moveDeviceReads(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        let account = try f.account("a@example.com")
        try f.store.recordRead(ArticleRead(subject: .device("d"), titleID: TitleID(rawValue: "euronews"), articleID: "a1", at: f.clock.now()))
        #expect(try f.store.moveDeviceReads(device: "d", to: account.id, actor: f.admin) == 1)
        #expect(try f.store.moveDeviceReads(device: "d", to: account.id, actor: f.admin) == 0)
        let before = try f.snapshot()
        #expect(throws: StoreError.accountNotFound("nope")) { try f.store.moveDeviceReads(device: "d", to: AccountID(rawValue: "nope"), actor: f.admin) }
        #expect(try f.snapshot() == before)
    }

    @Test("the session cap ends the least recently used sessions, audited, in the sign-in's transaction", arguments: TestBackend.all)
    func sessionCap(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("a@example.com")
        let phone = try f.store.startSession(accountID: account.id, lifetime: 3_600, deviceName: "phone", maximum: 2)
        f.clock.advance(by: 1)
        let tablet = try f.store.startSession(accountID: account.id, lifetime: 3_600, deviceName: "tablet", maximum: 2)
        f.clock.advance(by: 1)
        // The phone refreshes: the tablet becomes the least recently used.
        guard case .rotated = try f.store.refreshSession(token: phone.token, lifetime: 3_600) else { Issue.record("no rotation"); return }
        f.clock.advance(by: 1)
        let laptop = try f.store.startSession(accountID: account.id, lifetime: 3_600, deviceName: "laptop", maximum: 2)
        #expect(phone.ended.isEmpty && tablet.ended.isEmpty)
        #expect(laptop.ended.map(\.id) == [tablet.active.id])
        #expect(try f.store.sessionsInUse(accountID: account.id).map(\.deviceName) == ["laptop", "phone"])
        #expect(try f.store.refreshSession(token: tablet.token, lifetime: 3_600) == .rejected)
        #expect(try f.store.auditEntries(target: "account:\(account.id)").filter { $0.action == "session.evict" }.count == 1)

        // Same instant: the newest sign-in stays, whatever the order of equal times.
        let burst = try (0..<3).map { _ in try f.store.startSession(accountID: account.id, lifetime: 3_600, deviceName: nil, maximum: 1) }
        #expect(try f.store.sessionsInUse(accountID: account.id).map(\.id) == [burst[2].active.id])
        let before = try f.snapshot()
        #expect(throws: StoreError.accountNotFound("nope")) {
            try f.store.startSession(accountID: AccountID(rawValue: "nope"), lifetime: 3_600, deviceName: nil, maximum: 5)
        }
        #expect(try f.snapshot() == before)
    }

    @Test("a session started for a sign-in's check only while the checked password hash is the account's; none after a reset", arguments: TestBackend.all)
    func sessionOnlyForTheCheckedPassword(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let (account, _) = try f.store.createAccount(
            email: EmailAddress("checked@example.com"), displayName: nil, passwordHash: "$scrypt$old", carryingReadsOf: nil, actor: f.admin)
        _ = try f.store.startSession(accountID: account.id, lifetime: 3_600, deviceName: "phone", maximum: 5, passwordHash: "$scrypt$old")
        _ = try f.store.createSession(accountID: account.id, lifetime: 3_600, passwordHash: "$scrypt$old")
        #expect(try f.store.activeSessions(accountID: account.id).count == 2)
        // A reset commits between the sign-in's check (of the old hash) and its session.
        #expect(try f.store.setPasswordHash(accountID: account.id, hash: "$scrypt$new", actor: f.admin, revokeSessions: true) == 2)
        #expect(throws: StoreError.passwordChanged) {
            try f.store.startSession(accountID: account.id, lifetime: 3_600, deviceName: "attacker", maximum: 5, passwordHash: "$scrypt$old")
        }
        #expect(throws: StoreError.passwordChanged) { try f.store.createSession(accountID: account.id, lifetime: 3_600, passwordHash: "$scrypt$old") }
        #expect(try f.store.activeSessions(accountID: account.id).isEmpty, "nothing written for the refused ones")
        _ = try f.store.startSession(accountID: account.id, lifetime: 3_600, deviceName: "owner", maximum: 5, passwordHash: "$scrypt$new")
        #expect(try f.store.sessionsInUse(accountID: account.id).map(\.deviceName) == ["owner"])
    }

    @Test("a web session's use: noted at most hourly, shown as last used, evicted last, its expiry moved on within the family's limit; never for an ended one", arguments: TestBackend.all)
    func webSessionUse(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("a@example.com")
        let web = try f.store.startSession(accountID: account.id, lifetime: 30 * 86_400, deviceName: "browser", maximum: 2)
        f.clock.advance(by: 60)
        let phone = try f.store.startSession(accountID: account.id, lifetime: 30 * 86_400, deviceName: "phone", maximum: 2)
        // Within the hour: nothing written.
        let before = try f.snapshot()
        #expect(try f.store.noteWebSessionUse(web.session, lifetime: 30 * 86_400) == nil)
        #expect(try f.snapshot() == before)
        // Days of reading on the web, the phone idle.
        f.clock.advance(by: 3 * 86_400)
        let renewed = try #require(try f.store.noteWebSessionUse(web.session, lifetime: 30 * 86_400))
        #expect(renewed == Date(millis: f.clock.now().addingTimeInterval(30 * 86_400).millis))
        let listed = try f.store.sessionsInUse(accountID: account.id)
        #expect(listed.map(\.deviceName) == ["browser", "phone"], "most recently used first")
        #expect(listed.first?.lastUsedAt == Date(millis: f.clock.now().millis) && listed.first?.expiresAt == renewed)
        #expect(try f.store.session(token: web.token)?.expiresAt == renewed)
        // A new sign-in past the cap ends the idle phone, not the browser in use.
        let tablet = try f.store.startSession(accountID: account.id, lifetime: 30 * 86_400, deviceName: "tablet", maximum: 2)
        #expect(tablet.ended.map(\.id) == [phone.active.id])
        // Never past the family's limit (90 days from the sign-in).
        var latest = renewed
        for _ in 0..<3 {
            f.clock.advance(by: 25 * 86_400)
            let current = try #require(try f.store.session(token: web.token), "lapsed though in use")
            latest = try #require(try f.store.noteWebSessionUse(current, lifetime: 30 * 86_400))
        }
        #expect(latest == Date(millis: web.session.familyStartedAt.addingTimeInterval(90 * 86_400).millis))
        // A session begun without a device row (the CLI's): noted once an hour too.
        let plain = try f.store.createSession(accountID: account.id, lifetime: 30 * 86_400)
        f.clock.advance(by: 2 * 3_600)
        #expect(try f.store.noteWebSessionUse(plain.session, lifetime: 30 * 86_400) != nil)
        f.clock.advance(by: 60)
        let quiet = try f.snapshot()
        #expect(try f.store.noteWebSessionUse(try #require(try f.store.session(token: plain.token)), lifetime: 30 * 86_400) == nil, "noted: not again within the hour")
        #expect(try f.snapshot() == quiet)
        // Ended (signed out): nothing noted, nothing moved.
        _ = try f.store.revokeSession(id: web.active.id, accountID: account.id, actor: .account(account.id))
        f.clock.advance(by: 2 * 3_600)
        let ended = try f.snapshot()
        #expect(try f.store.noteWebSessionUse(web.session, lifetime: 30 * 86_400) == nil)
        #expect(try f.snapshot() == ended)
    }

    @Test("revoking one session by id: only the account's own, live ones", arguments: TestBackend.all)
    func revokeSession(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let a = try f.account("a@example.com")
        let b = try f.account("b@example.com")
        let mine = try f.store.startSession(accountID: a.id, lifetime: 3_600, deviceName: "x", maximum: 5)
        let theirs = try f.store.startSession(accountID: b.id, lifetime: 3_600, deviceName: "y", maximum: 5)
        let before = try f.snapshot()
        #expect(throws: StoreError.sessionNotFound) { try f.store.revokeSession(id: theirs.active.id, accountID: a.id, actor: .account(a.id)) }
        #expect(try f.snapshot() == before)
        #expect(try f.store.revokeSession(id: mine.active.id, accountID: a.id, actor: .account(a.id)).deviceName == "x")
        #expect(throws: StoreError.sessionNotFound) { try f.store.revokeSession(id: mine.active.id, accountID: a.id, actor: .account(a.id)) }
        #expect(try f.store.refreshSession(token: mine.token, lifetime: 3_600) == .rejected)
        #expect(try f.store.sessionInUse(token: theirs.token)?.id == theirs.active.id)
    }

    @Test("sign-in failures: counted per key within the window, blocked as told, cleared, and kept in the file", arguments: TestBackend.all)
    func signInFailures(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let now = f.clock.now()
        let block: (Int) -> TimeInterval = { $0 >= 2 ? 30 : 0 }
        #expect(try f.store.recordSignInFailure(keys: [("email:a", 600, block), ("client:1", 600, { _ in 0 })], at: now) == nil)
        let until = try #require(try f.store.recordSignInFailure(keys: [("email:a", 600, block)], at: now))
        #expect(until == Date(millis: now.addingTimeInterval(30).millis))
        #expect(try f.store.signInBlockedUntil(keys: ["client:1", "email:a"], at: now) == until)
        #expect(try f.store.signInBlockedUntil(keys: ["client:1"], at: now) == nil)
        #expect(try f.store.signInBlockedUntil(keys: ["email:a"], at: now.addingTimeInterval(31)) == nil)
        // A new store over the same file (a restart) sees the block.
        let reopened = try f.reopen()
        #expect(try reopened.signInBlockedUntil(keys: ["email:a"], at: now) == until)
        try reopened.close()
        // After the window the count starts again.
        #expect(try f.store.recordSignInFailure(keys: [("email:a", 600, block)], at: now.addingTimeInterval(601)) == nil)
        try f.store.clearSignInFailures(key: "email:a")
        #expect(try f.store.read { try $0.fetchValue(Int.self, "SELECT COUNT(*) FROM sign_in_failures WHERE key = 'email:a'") } == 0)
    }

    @Test("email links: only the hash is stored, a newer link voids the older, use is single, expiry holds", arguments: TestBackend.all)
    func emailLinks(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("a@example.com")
        var tokens: [String] = []
        for _ in 0..<2 {
            _ = try f.store.issueEmailLink(accountID: account.id, purpose: .verifyEmail, lifetime: 600, actor: f.admin) { account, token in
                tokens.append(token)
                return OutgoingMail(recipient: account.email, subject: "Confirm", body: "link #token=\(token)")
            }
        }
        let stored = try f.store.read { try $0.fetchValues(Data.self, "SELECT token_hash FROM email_links") }
        #expect(stored == [Data(RefreshToken.hash(tokens[1]))], "the newer link's hash only, never a token")
        #expect(try f.store.verifyEmail(token: tokens[0]) == nil, "superseded")
        let before = try f.snapshot()
        #expect(try f.store.resetPassword(token: tokens[1], hash: "$scrypt$new") == nil, "a verification link does not reset a password")
        #expect(try f.snapshot() == before)
        #expect(try f.store.verifyEmail(token: tokens[1])?.emailVerifiedAt != nil)
        #expect(try f.store.verifyEmail(token: tokens[1]) == nil, "single use")

        var reset = ""
        _ = try f.store.issueEmailLink(accountID: account.id, purpose: .resetPassword, lifetime: 600, actor: f.admin) { account, token in
            reset = token
            return OutgoingMail(recipient: account.email, subject: "Reset", body: token)
        }
        f.clock.advance(by: 601)
        #expect(try f.store.emailLinkAccount(token: reset, purpose: .resetPassword) == nil)
        #expect(try f.store.resetPassword(token: reset, hash: "$scrypt$new") == nil)
        #expect(try f.store.passwordHash(accountID: account.id) == "$scrypt$test")

        // A password set meanwhile voids the reset links mailed before it; a rehash at sign-in does not.
        var mailed = ""
        func mailReset() throws {
            _ = try f.store.issueEmailLink(accountID: account.id, purpose: .resetPassword, lifetime: 600, actor: f.admin) { account, token in
                mailed = token
                return OutgoingMail(recipient: account.email, subject: "Reset", body: token)
            }
        }
        try mailReset()
        let checked = try #require(try f.store.passwordHash(accountID: account.id))
        #expect(try f.store.upgradePasswordHash(accountID: account.id, checked: checked, upgraded: "$scrypt$rehashed"))
        #expect(try f.store.emailLinkAccount(token: mailed, purpose: .resetPassword) != nil, "a rehash keeps the link")
        // A rehash of a hash that is no longer the account's (a reset committed after the
        // sign-in's check) changes nothing.
        #expect(try !f.store.upgradePasswordHash(accountID: account.id, checked: checked, upgraded: "$scrypt$stale"))
        #expect(try f.store.passwordHash(accountID: account.id) == "$scrypt$rehashed")
        try f.store.setPasswordHash(accountID: account.id, hash: "$scrypt$owner", actor: f.admin)
        #expect(try f.store.emailLinkAccount(token: mailed, purpose: .resetPassword) == nil, "a new password voids it")
        #expect(try f.store.resetPassword(token: mailed, hash: "$scrypt$thief") == nil)
        #expect(try f.store.passwordHash(accountID: account.id) == "$scrypt$owner")
    }

    @Test("the outbox: a claim leases messages, a sent message loses its body, a failed one waits to be retried", arguments: TestBackend.all)
    func outbox(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("a@example.com")
        for purpose in EmailLinkPurpose.allCases {
            _ = try f.store.issueEmailLink(accountID: account.id, purpose: purpose, lifetime: 600, actor: f.admin) { account, token in
                OutgoingMail(recipient: account.email, subject: purpose.rawValue, body: "secret \(token)")
            }
        }
        let claimed = try f.store.claimMail(limit: 10, lease: 60)
        #expect(claimed.map(\.subject) == ["verify-email", "reset-password"])
        #expect(try f.store.claimMail(limit: 10, lease: 60).isEmpty, "leased: a concurrent delivery takes nothing")
        try f.store.markMailSent(id: claimed[0].id)
        try f.store.markMailFailed(id: claimed[1].id, error: "exit 75", retryAfter: 120)
        f.clock.advance(by: 61)
        #expect(try f.store.claimMail(limit: 10, lease: 60).isEmpty, "the failed one waits its retry time")
        f.clock.advance(by: 60)
        #expect(try f.store.claimMail(limit: 10, lease: 60).map(\.id) == [claimed[1].id])
        let listed = try f.store.outbox(limit: 10)
        #expect(listed.first { $0.id == claimed[0].id }?.body == "")
        #expect(listed.first { $0.id == claimed[1].id }?.lastError == "exit 75")
        #expect(listed.first { $0.id == claimed[1].id }?.attempts == 2)
        #expect(try f.store.mailCount(recipient: "a@example.com", since: .distantPast) == 2)
        // Past its link's life a message is not sent at all.
        f.clock.advance(by: 600)
        #expect(try f.store.claimMail(limit: 10, lease: 60).isEmpty)
    }

    @Test("v7 tables refuse what they must", arguments: TestBackend.all)
    func constraints(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("a@example.com")
        #expect(throws: StoreError.self) {
            try f.store.write { db in
                try db.execute("INSERT INTO email_links (token_hash, account_id, purpose, created_at, expires_at) VALUES (?, ?, 'anything', 1, 2)",
                               [Data([0]), account.id.rawValue])
            }
        }
        // Deleting the account takes its links and session devices with it, and its mail not
        // sent yet (AccountStoreTests: what happens to mail already sent).
        _ = try f.store.startSession(accountID: account.id, lifetime: 60, deviceName: "x", maximum: 5)
        _ = try f.store.issueEmailLink(accountID: account.id, purpose: .verifyEmail, lifetime: 60, actor: f.admin) { a, t in OutgoingMail(recipient: a.email, subject: "s", body: t) }
        try f.store.deleteAccount(id: account.id, actor: f.admin)
        let counts = try f.snapshot()
        #expect(counts["email_links"] == 0 && counts["session_devices"] == 0 && counts["outbox"] == 0)
    }
}
