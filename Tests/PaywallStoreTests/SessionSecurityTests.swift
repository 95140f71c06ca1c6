import Foundation
import GRDB
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

@Suite("Session security")
struct SessionSecurityTests {
    let day: TimeInterval = 86_400

    func reuseEntries(_ f: StoreFixture, _ account: Account) throws -> [AuditEntry] {
        try f.store.auditEntries(target: "account:\(account.id)").filter { $0.action == "session.reuse" }
    }

    func details(_ entry: AuditEntry) throws -> [String: String] {
        try #require(try JSONSerialization.jsonObject(with: Data(entry.details.utf8)) as? [String: String])
    }

    /// A rotation that must succeed.
    func rotated(_ outcome: SessionRefresh, sourceLocation: SourceLocation = #_sourceLocation) throws -> (token: String, session: RefreshSession) {
        guard case let .rotated(token, session) = outcome else {
            Issue.record("expected a rotation, got \(outcome)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        return (token, session)
    }

    // MARK: - Reuse

    @Test("a reused refresh token is audited against the account, naming the family and session, never the token", arguments: TestBackend.all)
    func reuseAudited(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let first = try f.store.createSession(accountID: account.id, tokenHash: [1, 2, 3], lifetime: 30 * day)
        _ = try f.store.rotateSession(tokenHash: [1, 2, 3], newTokenHash: [4, 5, 6], lifetime: 30 * day)
        f.clock.advance(by: 60)
        #expect(try f.store.rotateSession(tokenHash: [1, 2, 3], newTokenHash: [7, 8, 9], lifetime: 30 * day)
            == .reuseDetected(familyID: first.familyID))
        let entry = try #require(try f.store.auditEntries(target: "account:\(account.id)").first)
        #expect(entry.action == "session.reuse")
        #expect(entry.actor == .system)
        #expect(try details(entry) == ["family": first.familyID, "session": first.id])
        #expect(try f.store.activeSessions(accountID: account.id).isEmpty)
    }

    // SQLite only: the fault is a temporary trigger of the test's own connection.
    @Test("the reuse entry is written in the transaction that revokes the family: both or neither", arguments: [TestBackend.sqlite])
    func reuseAuditAtomic(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let (first, _) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        let (second, _) = try rotated(f.store.refreshSession(token: first, lifetime: 30 * day))
        f.clock.advance(by: 60)
        try f.store.pool.writeWithoutTransaction { db in
            try db.execute(sql: """
                CREATE TEMP TRIGGER refuse_reuse_audit BEFORE INSERT ON main.audit_log WHEN NEW.action = 'session.reuse'
                BEGIN SELECT RAISE(ABORT, 'audit refused'); END
                """)
        }
        #expect(throws: StoreError.self) { try f.store.refreshSession(token: first, lifetime: 30 * day) }
        #expect(try f.store.session(token: second) != nil, "the family was revoked without its audit entry")
        try f.store.pool.writeWithoutTransaction { try $0.execute(sql: "DROP TRIGGER temp.refuse_reuse_audit") }
        guard case .reuseDetected = try f.store.refreshSession(token: first, lifetime: 30 * day) else {
            Issue.record("expected reuse detection")
            return
        }
        #expect(try f.store.session(token: second) == nil)
        #expect(try reuseEntries(f, account).count == 1)
    }

    // MARK: - Concurrent refresh (grace window)

    @Test("the same token twice within the grace window: the identical successor, nothing revoked, nothing leaked", arguments: TestBackend.all)
    func doubleSubmitWithinGrace(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let (first, started) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        #expect(first.count == 43)
        #expect(try f.store.session(token: first) == started)
        let (second, session) = try rotated(f.store.refreshSession(token: first, lifetime: 30 * day))
        #expect(second != first)
        #expect(session.familyID == started.familyID)

        f.clock.advance(by: 9.9)
        #expect(try f.store.refreshSession(token: first, lifetime: 30 * day) == .alreadyRotated(token: second, session: session))
        #expect(try f.store.refreshSession(token: first, lifetime: 30 * day) == .alreadyRotated(token: second, session: session))
        #expect(try f.store.activeSessions(accountID: account.id) == [session])
        #expect(try reuseEntries(f, account).isEmpty)

        // The database holds neither the successor nor its bytes, only its hash and the
        // bytes sealed under the old token.
        let blobs = try f.store.read { db in
            try db.fetchAll("SELECT token_hash, successor_sealed FROM sessions").flatMap { row in
                [row[0] as Data?, row[1] as Data?].compactMap { $0 }
            }
        }
        let secondBytes = try #require(Data(base64Encoded: second.replacingOccurrences(of: "-", with: "+")
            .replacingOccurrences(of: "_", with: "/") + "="))
        #expect(secondBytes.count == 32)
        #expect(blobs.count == 3)
        for blob in blobs {
            #expect(blob != secondBytes && blob != Data(second.utf8) && blob != Data(first.utf8))
            #expect(!String(decoding: blob, as: UTF8.self).contains(second))
        }

        // The successor goes on rotating normally.
        let (third, _) = try rotated(f.store.refreshSession(token: second, lifetime: 30 * day))
        #expect(try f.store.session(token: third) != nil)
    }

    @Test("many refreshes of one token at once: one rotation, every caller gets the same successor", arguments: TestBackend.all)
    func concurrentRefreshes(backend: TestBackend) async throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let (token, _) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        let store = f.store
        let outcomes = try await withThrowingTaskGroup(of: SessionRefresh.self) { group in
            for _ in 0..<8 { group.addTask { try store.refreshSession(token: token, lifetime: 30 * 86_400) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        var rotations: [String] = [], repeats: [String] = []
        for outcome in outcomes {
            switch outcome {
            case let .rotated(next, _): rotations.append(next)
            case let .alreadyRotated(next, _): repeats.append(next)
            default: Issue.record("unexpected \(outcome)")
            }
        }
        #expect(rotations.count == 1)
        #expect(repeats.count == 7)
        #expect(Set(rotations + repeats).count == 1)
        #expect(try f.store.activeSessions(accountID: account.id).count == 1)
        #expect(try reuseEntries(f, account).isEmpty)
    }

    @Test("after the grace window the old token is reuse: family revoked and audited", arguments: TestBackend.all)
    func afterGrace(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let (first, started) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        let (second, _) = try rotated(f.store.refreshSession(token: first, lifetime: 30 * day))
        f.clock.advance(by: 10)
        #expect(try f.store.refreshSession(token: first, lifetime: 30 * day) == .reuseDetected(familyID: started.familyID))
        #expect(try f.store.session(token: second) == nil)
        #expect(try f.store.refreshSession(token: second, lifetime: 30 * day) == .rejected)
        let entries = try reuseEntries(f, account)
        #expect(entries.count == 1)
        #expect(try entries.first.map(details) == ["family": started.familyID, "session": started.id])
        #expect(entries.allSatisfy { !$0.details.contains(first) && !$0.details.contains(second) })
        // Replaying a token of a family already revoked is still refused, but writes no more
        // entries: a stolen old token cannot flood the audit log. No seal is left behind.
        for _ in 0..<5 {
            #expect(try f.store.refreshSession(token: first, lifetime: 30 * day) == .reuseDetected(familyID: started.familyID))
        }
        #expect(try reuseEntries(f, account).count == 1)
        let seals = try f.store.read { try $0.fetchValue(Int.self, "SELECT COUNT(*) FROM sessions WHERE successor_sealed IS NOT NULL") }
        #expect(seals == 0)
    }

    @Test("a configurable grace window; zero turns it off", arguments: TestBackend.all)
    func graceConfigurable(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend) { $0.refreshGraceWindow = 0 }
        let account = try f.account("ada@example.com")
        let (first, started) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        _ = try rotated(f.store.refreshSession(token: first, lifetime: 30 * day))
        #expect(try f.store.refreshSession(token: first, lifetime: 30 * day) == .reuseDetected(familyID: started.familyID))

        let g = try StoreFixture(backend: backend) { $0.refreshGraceWindow = 60 }
        let other = try g.account("bob@example.com")
        let (token, _) = try g.store.createSession(accountID: other.id, lifetime: 30 * day)
        let (next, session) = try rotated(g.store.refreshSession(token: token, lifetime: 30 * day))
        g.clock.advance(by: 59)
        #expect(try g.store.refreshSession(token: token, lifetime: 30 * day) == .alreadyRotated(token: next, session: session))
    }

    @Test("within the grace window, a successor already rotated or revoked means reuse", arguments: TestBackend.all)
    func successorNoLongerCurrent(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let (first, started) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        let (second, _) = try rotated(f.store.refreshSession(token: first, lifetime: 30 * day))
        f.clock.advance(by: 1)
        let (third, _) = try rotated(f.store.refreshSession(token: second, lifetime: 30 * day))
        f.clock.advance(by: 1)
        #expect(try f.store.refreshSession(token: first, lifetime: 30 * day) == .reuseDetected(familyID: started.familyID))
        #expect(try f.store.session(token: third) == nil)
        #expect(try reuseEntries(f, account).count == 1)

        // Signed out everywhere: the successor is revoked, so its predecessor is reuse; but
        // quiet, as after one session's sign-out: everything was ended already, and ending
        // the access tokens again would end the next sign-in's (and audit a false theft).
        let (a, other) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        _ = try rotated(f.store.refreshSession(token: a, lifetime: 30 * day))
        try f.store.revokeSessions(accountID: account.id, actor: f.admin)
        let count = try f.store.signOutsEverywhere(accountID: account.id)
        #expect(try f.store.refreshSession(token: a, lifetime: 30 * day) == .reuseDetected(familyID: other.familyID))
        #expect(try reuseEntries(f, account).count == 1)
        #expect(try f.store.signOutsEverywhere(accountID: account.id) == count)
    }

    @Test("a sealed successor that does not match the successor's hash is never returned", arguments: TestBackend.all)
    func tamperedSeal(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let (first, started) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        _ = try rotated(f.store.refreshSession(token: first, lifetime: 30 * day))
        try f.store.write { db in
            try db.execute("UPDATE sessions SET successor_sealed = ? WHERE successor_sealed IS NOT NULL", [Data((0..<32).map { _ in UInt8.random(in: 0...255) })])
        }
        #expect(try f.store.refreshSession(token: first, lifetime: 30 * day) == .reuseDetected(familyID: started.familyID))
        #expect(try f.store.activeSessions(accountID: account.id).isEmpty)
    }

    @Test("rotation by hash alone has no grace: a second use is reuse", arguments: TestBackend.all)
    func hashRotationHasNoGrace(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let first = try f.store.createSession(accountID: account.id, tokenHash: [1], lifetime: 30 * day)
        _ = try f.store.rotateSession(tokenHash: [1], newTokenHash: [2], lifetime: 30 * day)
        #expect(try f.store.rotateSession(tokenHash: [1], newTokenHash: [3], lifetime: 30 * day) == .reuseDetected(familyID: first.familyID))
    }

    // MARK: - Family lifetime

    @Test("a family lives a fixed time from its first sign-in, however often it rotates", arguments: TestBackend.all)
    func familyLifetime(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend) { $0.sessionFamilyLifetime = 10 * 86_400 }
        let account = try f.account("ada@example.com")
        let start = f.clock.now()
        let (token, first) = try f.store.createSession(accountID: account.id, lifetime: 7 * day)
        #expect(first.familyStartedAt == start)
        #expect(first.expiresAt == start.addingTimeInterval(7 * day))

        f.clock.advance(by: 5 * day)
        let (second, session) = try rotated(f.store.refreshSession(token: token, lifetime: 7 * day))
        #expect(session.familyStartedAt == start)
        #expect(session.expiresAt == start.addingTimeInterval(10 * day), "rotation extended the family")

        f.clock.advance(by: 4.5 * day)
        let (third, last) = try rotated(f.store.refreshSession(token: second, lifetime: 7 * day))
        #expect(last.expiresAt == start.addingTimeInterval(10 * day))

        f.clock.advance(by: 0.5 * day)
        #expect(try f.store.session(token: third) == nil)
        #expect(try f.store.refreshSession(token: third, lifetime: 7 * day) == .rejected)
        #expect(try f.store.activeSessions(accountID: account.id).isEmpty)

        // A session asked for longer than the family may live is cut to it.
        let (_, long) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        #expect(long.expiresAt == long.familyStartedAt.addingTimeInterval(10 * day))
    }

    @Test("the default family lifetime is 90 days, and shortening it applies to existing families", arguments: TestBackend.all)
    func familyLifetimeDefaultAndShortened(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        var token = try f.store.createSession(accountID: account.id, lifetime: 30 * day).token
        for _ in 0..<3 {
            f.clock.advance(by: 29 * day)
            token = try rotated(f.store.refreshSession(token: token, lifetime: 30 * day)).token
        }
        // Day 87: the session ends on day 90, not day 117.
        #expect(try f.store.session(token: token)?.expiresAt == f.clock.now().addingTimeInterval(3 * day))
        f.clock.advance(by: 3 * day)
        #expect(try f.store.refreshSession(token: token, lifetime: 30 * day) == .rejected)

        let (fresh, _) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        f.clock.advance(by: 4 * day)
        var configuration = StoreConfiguration()
        configuration.clock = f.clock
        configuration.sessionFamilyLifetime = 3 * day
        let shorter = try Store(location: f.path, configuration: configuration)
        defer { try? shorter.close() }
        #expect(try shorter.session(token: fresh) == nil)
        #expect(try shorter.activeSessions(accountID: account.id).isEmpty)
        #expect(try shorter.refreshSession(token: fresh, lifetime: 30 * day) == .rejected)
        #expect(try f.store.session(token: fresh) != nil)
    }

    @Test("rotation by hash (the service's current path) respects the family lifetime too", arguments: TestBackend.all)
    func familyLifetimeByHash(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let start = f.clock.now()
        _ = try f.store.createSession(accountID: account.id, tokenHash: [0], lifetime: 30 * day)
        for step in 1...3 {
            f.clock.advance(by: 29 * day)
            _ = try f.store.rotateSession(tokenHash: [UInt8(step - 1)], newTokenHash: [UInt8(step)], lifetime: 30 * day)
        }
        #expect(try f.store.session(tokenHash: [3])?.expiresAt == start.addingTimeInterval(90 * day))
        f.clock.advance(by: 3 * day)
        #expect(try f.store.session(tokenHash: [3]) == nil)
        #expect(try f.store.rotateSession(tokenHash: [3], newTokenHash: [4], lifetime: 30 * day) == .rejected)
    }

    // MARK: - Password change

    @Test("a new password and signing out everywhere happen in one transaction, with their audit entries", arguments: TestBackend.all)
    func passwordChangeRevokesSessions(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let other = try f.account("bob@example.com")
        let (a, _) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        let (b, _) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        let (c, _) = try f.store.createSession(accountID: other.id, lifetime: 30 * day)
        #expect(try f.store.setPasswordHash(accountID: account.id, hash: "$scrypt$new", actor: f.admin, revokeSessions: true) == 2)
        #expect(try f.store.passwordHash(accountID: account.id) == "$scrypt$new")
        #expect(try f.store.session(token: a) == nil)
        #expect(try f.store.session(token: b) == nil)
        #expect(try f.store.session(token: c) != nil)
        let actions = try f.store.auditEntries(target: "account:\(account.id)").prefix(2).map(\.action)
        #expect(actions == ["session.revoke-all", "account.set-password"])
        // Without revokeSessions sessions stay; a rehash at sign-in keeps them too.
        #expect(try f.store.setPasswordHash(accountID: other.id, hash: "$scrypt$re", actor: .system) == 0)
        #expect(try f.store.upgradePasswordHash(accountID: other.id, checked: "$scrypt$re", upgraded: "$scrypt$re2"))
        #expect(try f.store.session(token: c) != nil)
    }

    // SQLite only: the fault is a temporary trigger of the test's own connection.
    @Test("when revoking the sessions fails, the password is not changed either", arguments: [TestBackend.sqlite])
    func passwordChangeAtomic(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let (token, _) = try f.store.createSession(accountID: account.id, lifetime: 30 * day)
        try f.store.pool.writeWithoutTransaction { db in
            try db.execute(sql: """
                CREATE TEMP TRIGGER refuse_revocation BEFORE UPDATE OF revoked_at ON main.sessions
                BEGIN SELECT RAISE(ABORT, 'revocation refused'); END
                """)
        }
        let before = try f.snapshot()
        let audit = try f.store.auditEntries()
        #expect(throws: StoreError.self) {
            try f.store.setPasswordHash(accountID: account.id, hash: "$scrypt$new", actor: f.admin, revokeSessions: true)
        }
        #expect(try f.store.passwordHash(accountID: account.id) == "$scrypt$test")
        #expect(try f.store.account(id: account.id)?.updatedAt == account.updatedAt)
        #expect(try f.store.auditEntries() == audit)
        #expect(try f.snapshot() == before)
        #expect(try f.store.session(token: token) != nil)
    }
}
