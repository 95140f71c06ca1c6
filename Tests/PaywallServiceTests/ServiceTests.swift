import Foundation
import Testing
import PaywallCore
import PaywallCrypto
@testable import PaywallService
@testable import PaywallStore
import PaywallTestSupport

@Suite("Sign-up and sign-in")
struct AccountServiceTests {
    @Test("sign-up hashes the password with scrypt; sign-in checks it")
    func signUpSignIn() throws {
        let f = try ServiceFixture()
        let account = try f.service.signUp(email: "Ada@Example.com", password: "correct horse battery", displayName: " Ada ", actor: f.admin)
        #expect(account.displayName == "Ada")
        let stored = try #require(try f.service.store.passwordHash(accountID: account.id))
        #expect(stored.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        #expect(!stored.contains("correct horse"))
        let signIn = try f.service.signIn(email: "ada@example.COM", password: "correct horse battery")
        #expect(signIn.account.id == account.id)
        #expect(signIn.refreshToken.count == 43)
    }

    @Test("bad sign-up input is refused with its reason and writes nothing", arguments: [
        ("not-an-email", "correct horse battery"),
        ("ada@example.com", "short"),
        ("ada@example.com", "Password123"),
        ("ada@example.com", "ada@example.com!!"),
    ])
    func refusedSignUp(email: String, password: String) throws {
        let f = try ServiceFixture()
        #expect {
            _ = try f.service.signUp(email: email, password: password, displayName: nil, actor: f.admin)
        } throws: { error in
            guard case .invalidInput = error as? ServiceError else { return false }
            return true
        }
        #expect(try f.counts() == (0, 0))
    }

    @Test("a duplicate sign-up is refused without hashing or writing")
    func duplicate() throws {
        let f = try ServiceFixture()
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let before = try f.counts()
        #expect(throws: ServiceError.store(.duplicateEmail("ADA@example.com"))) {
            try f.service.signUp(email: "ADA@example.com", password: "another good phrase", displayName: nil, actor: f.admin)
        }
        #expect(try f.counts() == before)
    }

    @Test("wrong password, unknown and malformed emails all get the same answer", arguments: [
        ("ada@example.com", "wrong password!!"), ("nobody@example.com", "correct horse battery"), ("garbage", "correct horse battery"),
    ])
    func refusedSignIn(email: String, password: String) throws {
        let f = try ServiceFixture()
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        #expect(throws: ServiceError.invalidCredentials) { try f.service.signIn(email: email, password: password) }
        #expect(try f.service.store.activeSessions(accountID: f.service.account("ada@example.com").id).isEmpty)
    }

    /// Ada's account with a hash of weaker parameters than `stronger`, a second service on
    /// the same store, is configured with (as after an operator raised them).
    func weakHashFixture() throws -> (ServiceFixture, Account, PaywallService) {
        let f = try ServiceFixture(hashing: ScryptParameters(logN: 6, r: 8, p: 1))
        let account = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let stronger = try PaywallService(store: f.service.store, configuration: ServiceFixture.configuration(f.clock, .testing))
        return (f, account, stronger)
    }

    @Test("a password reset committed while a sign-in checks the old password: no session for the old one, and no rehash over the new")
    func resetDuringSignIn() throws {
        let (f, account, stronger) = try weakHashFixture()
        // The sign-in's check of the old password has passed (its hash read) ...
        let checked = try #require(try f.service.store.passwordHash(accountID: account.id))
        // ... when the owner's new password commits, signing every session out.
        try stronger.setPassword(account: "ada@example.com", password: "a brand new passphrase", actor: .account(account.id))
        let owners = try #require(try f.service.store.passwordHash(accountID: account.id))
        // The sign-in's rehash of the old password does not overwrite the new hash ...
        #expect(try !f.service.store.upgradePasswordHash(accountID: account.id, checked: checked, upgraded: "$scrypt$stale"))
        #expect(try f.service.store.passwordHash(accountID: account.id) == owners)
        // ... and its session is refused as bad credentials, nothing written.
        #expect(throws: ServiceError.invalidCredentials) {
            try stronger.openSession(account: account, deviceName: "attacker", passwordHash: checked)
        }
        #expect(try f.service.store.activeSessions(accountID: account.id).isEmpty)
        // The new password signs in; the old one does not.
        _ = try stronger.signInReader(email: "ada@example.com", password: "a brand new passphrase", deviceName: nil, client: "test")
        #expect(throws: ServiceError.invalidCredentials) {
            try stronger.signInReader(email: "ada@example.com", password: "correct horse battery", deviceName: nil, client: "test")
        }
    }

    @Test("two sign-ins at once while the hash is upgraded: both start their session (the second finds the first's upgrade of the same password)")
    func concurrentUpgrade() throws {
        let (f, account, stronger) = try weakHashFixture()
        let old = try #require(try f.service.store.passwordHash(accountID: account.id))
        // The other sign-in's upgrade lands between this one's read of the hash and its own.
        let other = try PasswordHasher(parameters: .testing).hash("correct horse battery")
        #expect(try f.service.store.upgradePasswordHash(accountID: account.id, checked: old, upgraded: other))
        // This sign-in checked `old`: its upgrade finds the other's, which the same password
        // opens, and its session starts on it.
        #expect(try stronger.upgradedHash(account.id, password: "correct horse battery", checked: old) == other)
        #expect(try f.service.store.passwordHash(accountID: account.id) == other)
        _ = try stronger.openSession(account: account, deviceName: "web", passwordHash: other)
        // A reset instead (a password this one does not open): the hash checked comes back,
        // and the session is refused on it.
        try stronger.setPassword(account: "ada@example.com", password: "a brand new passphrase", actor: .account(account.id))
        #expect(try stronger.upgradedHash(account.id, password: "correct horse battery", checked: other) == other)
        #expect(throws: ServiceError.invalidCredentials) { try stronger.openSession(account: account, deviceName: "attacker", passwordHash: other) }
    }

    @Test("a hash made with weaker parameters is upgraded at the next sign-in")
    func upgrade() throws {
        let f = try ServiceFixture(hashing: ScryptParameters(logN: 6, r: 8, p: 1))
        let account = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        #expect(try PasswordHasher.parameters(of: #require(try f.service.store.passwordHash(accountID: account.id))).logN == 6)
        let stronger = try PaywallService(store: f.service.store, configuration: ServiceFixture.configuration(f.clock, .testing))
        _ = try stronger.signIn(email: "ada@example.com", password: "correct horse battery")
        let upgraded = try #require(try f.service.store.passwordHash(accountID: account.id))
        #expect(try PasswordHasher.parameters(of: upgraded) == .testing)
        #expect(try f.service.store.auditEntries(target: "account:\(account.id)").first?.action == "account.rehash-password")
        // The new hash still verifies, and no second upgrade happens.
        _ = try stronger.signIn(email: "ada@example.com", password: "correct horse battery")
        #expect(try f.service.store.passwordHash(accountID: account.id) == upgraded)
    }

    @Test("changing the password signs the account out everywhere; refresh rotates and detects reuse")
    func sessions() throws {
        let f = try ServiceFixture()
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let first = try f.service.signIn(email: "ada@example.com", password: "correct horse battery")
        let (second, session) = try f.service.refreshSession(token: first.refreshToken)
        #expect(session.familyID == first.session.familyID)
        // A double submit at once (two tabs refreshing) gets the same successor...
        let (repeated, _) = try f.service.refreshSession(token: first.refreshToken)
        #expect(repeated == second)
        // ...but later it is reuse: the family is revoked and the reuse audited.
        f.clock.advance(by: 11)
        #expect(throws: ServiceError.sessionReused) { try f.service.refreshSession(token: first.refreshToken) }
        #expect(throws: ServiceError.sessionRejected) { try f.service.refreshSession(token: second) }
        #expect(try f.service.store.auditEntries().contains { $0.action == "session.reuse" })

        let again = try f.service.signIn(email: "ada@example.com", password: "correct horse battery")
        #expect(throws: ServiceError.invalidInput(.weakPassword(.tooShort(minimum: 10)))) {
            try f.service.setPassword(account: "ada@example.com", password: "short", actor: f.admin)
        }
        _ = try f.service.refreshSession(token: again.refreshToken).0
        let third = try f.service.signIn(email: "ada@example.com", password: "correct horse battery")
        try f.service.setPassword(account: "ada@example.com", password: "a brand new passphrase", actor: f.admin)
        #expect(throws: ServiceError.sessionRejected) { try f.service.refreshSession(token: third.refreshToken) }
        #expect(throws: ServiceError.invalidCredentials) { try f.service.signIn(email: "ada@example.com", password: "correct horse battery") }
        _ = try f.service.signIn(email: "ada@example.com", password: "a brand new passphrase")
        f.clock.advance(by: 31 * 86_400)
        #expect(try f.service.store.activeSessions(accountID: f.service.account("ada@example.com").id).isEmpty)
    }
}

@Suite("Catalog and entitlements through the service")
struct EntitlementServiceTests {
    @Test("titles and plans validate their input")
    func catalog() throws {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: " Euronews ", publisher: "Euronews SA", actor: f.admin)
        #expect(throws: ServiceError.self) { try f.service.addTitle(id: "Euro News", name: "x", publisher: "y", actor: f.admin) }
        #expect(throws: ServiceError.self) { try f.service.addTitle(id: "x", name: " ", publisher: "y", actor: f.admin) }
        #expect(throws: ServiceError.self) { try f.service.addPlan(id: "p", name: "P", period: "fortnight", titles: nil, actor: f.admin) }
        #expect(throws: ServiceError.store(.titleNotFound("nope"))) { try f.service.addPlan(id: "p", name: "P", period: "month", titles: ["nope"], actor: f.admin) }
        let plan = try f.service.addPlan(id: "p", name: "P", period: "Year", titles: ["euronews"], actor: f.admin)
        #expect(plan.period == .year)
        #expect(try f.service.store.titles().first?.name == "Euronews")
    }

    @Test("grant defaults to one billing period; a past end date is refused; cancel picks the right membership")
    func memberships() throws {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        _ = try f.service.addPlan(id: "monthly", name: "Monthly", period: "month", titles: nil, actor: f.admin)
        _ = try f.service.addPlan(id: "news", name: "News", period: "year", titles: ["euronews"], actor: f.admin)
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let m = try f.service.grantMembership(account: "ada@example.com", plan: "monthly", until: nil, source: .admin, actor: f.admin)
        #expect(m.currentPeriodEnd == f.clock.now().addingTimeInterval(30 * 86_400))
        #expect(throws: ServiceError.self) {
            try f.service.grantMembership(account: "ada@example.com", plan: "news", until: f.clock.now().addingTimeInterval(-1), source: .admin, actor: f.admin)
        }
        _ = try f.service.grantMembership(account: "ada@example.com", plan: "news", until: nil, source: .comp, actor: f.admin)
        let before = try f.counts()
        #expect(throws: ServiceError.self) { try f.service.cancelMembership(account: "ada@example.com", plan: nil, immediately: false, actor: f.admin) }
        #expect(try f.counts() == before)
        let canceled = try f.service.cancelMembership(account: "ada@example.com", plan: "news", immediately: true, actor: f.admin)
        #expect(canceled.status == .expired)
        // Now only one live membership remains, so no plan is needed.
        #expect(try f.service.cancelMembership(account: "ada@example.com", plan: nil, immediately: false, actor: f.admin).planID.rawValue == "monthly")
    }

    @Test("trials use the configured default length; reads are validated")
    func trialsAndReads() throws {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        let account = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let trial = try f.service.startTrial(account: "ada@example.com", actor: f.admin)
        #expect(trial.endsAt == f.clock.now().addingTimeInterval(14 * 86_400))
        try f.service.recordRead(subject: .account(account.id), title: "euronews", article: "zelenskyy-talks")
        #expect(throws: ServiceError.self) { try f.service.recordRead(subject: .account(account.id), title: "Euronews!", article: "a") }
        #expect(throws: ServiceError.self) { try f.service.recordRead(subject: .account(account.id), title: "euronews", article: "") }
        #expect(try f.service.store.readCount() == 1)
    }

    @Test("the demo data on a database where a demo title was retired: the title stays out, its plan is made without it")
    func demoWithRetiredTitle() throws {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "Euronews SA", actor: f.admin)
        _ = try f.service.retireTitle(id: "euronews", actor: f.admin)
        let load = try f.service.loadDemoData(actor: f.admin)
        #expect(load.plansAdded == 2)
        let plan = try #require(try f.service.store.plan(id: PlanID(rawValue: "news-annual")))
        #expect(plan.bundle == .titles([TitleID(rawValue: "le-monde"), TitleID(rawValue: "the-daily")]))
        #expect(try f.service.store.title(id: TitleID(rawValue: "euronews"))?.isRetired == true)
        #expect(try f.service.account("news@example.com").email == "news@example.com")
    }
}
