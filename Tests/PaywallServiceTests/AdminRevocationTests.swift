import Foundation
import Testing
import PaywallTestSupport
import PaywallCore
import PaywallTokens
@testable import PaywallService
@testable import PaywallStore

@Suite("Admin tokens revoked before they expire")
struct AdminRevocationTests {
    func admin(_ f: ServiceFixture, _ name: String) throws -> IssuedToken {
        try f.service.issueAdminToken(subject: name, scopes: [.catalog, .audit], lifetime: 3_600, audience: nil, actor: f.admin)
    }

    func refusal(_ f: ServiceFixture, _ token: String) -> ServiceError? {
        do {
            _ = try f.service.adminPrincipal(bearer: token, requiring: .catalog)
            return nil
        } catch {
            return error
        }
    }

    func rows(_ f: ServiceFixture) throws -> Int {
        try f.service.store.read { db in try db.fetchValue(Int.self, "SELECT COUNT(*) FROM admin_token_revocations") ?? -1 }
    }

    @Test("one token by its id, then every token of an admin; others and later ones still work; audited", arguments: TestBackend.all)
    func revoke(backend: TestBackend) throws {
        let f = try ServiceFixture(backend: backend)
        let first = try admin(f, "alice"), second = try admin(f, "alice"), bob = try admin(f, "bob")
        for token in [first, second, bob] { #expect(refusal(f, token.token) == nil) }

        try f.service.revokeAdminTokens(tokenID: first.claims.tokenID, subject: nil, actor: f.admin)
        #expect(refusal(f, first.token) == .token(.revoked))
        #expect(refusal(f, second.token) == nil, "only that token")
        #expect(refusal(f, bob.token) == nil)
        // The CLI's `token verify` asks the same.
        #expect(throws: ServiceError.token(.revoked)) { try f.service.verifyToken(first.token, kinds: [.admin]) }

        f.clock.advance(by: 5)
        // Minted a moment before, on a host whose clock runs 10 s ahead: its iat is after now.
        f.clock.advance(by: 10)
        let ahead = try admin(f, "alice")
        f.clock.advance(by: -10)
        #expect(refusal(f, ahead.token) == nil)
        try f.service.revokeAdminTokens(tokenID: nil, subject: "alice", actor: f.admin)
        #expect(refusal(f, second.token) == .token(.revoked))
        #expect(refusal(f, ahead.token) == .token(.revoked), "a token stamped a few seconds ahead of this clock outlived the revocation")
        #expect(refusal(f, bob.token) == nil, "another admin's token")
        // A token minted after the revocation's leeway works.
        f.clock.advance(by: 31)
        let later = try admin(f, "alice")
        #expect(refusal(f, later.token) == nil)

        let entries = try f.service.auditEntries(limit: 50).filter { $0.action == "token.admin.revoke" }
        #expect(Set(entries.map(\.target)) == ["token:\(first.claims.tokenID)", "admin:alice"])
        #expect(entries.allSatisfy { $0.actor == f.admin })
    }

    @Test("bad input is refused with its reason and stores nothing", arguments: TestBackend.all)
    func badInput(backend: TestBackend) throws {
        let f = try ServiceFixture(backend: backend)
        let token = try admin(f, "alice")
        let bad: [(String?, String?)] = [(nil, nil), ("abc", "alice"), ("", nil), ("has space", nil), ("x'; DROP TABLE accounts; --", nil),
                                         (String(repeating: "a", count: 65), nil), (nil, ""), (nil, "bad name!"), (nil, String(repeating: "n", count: 65))]
        for (id, subject) in bad {
            #expect(throws: ServiceError.self, "\(String(describing: id)) \(String(describing: subject))") {
                try f.service.revokeAdminTokens(tokenID: id, subject: subject, actor: f.admin)
            }
        }
        #expect(try rows(f) == 0)
        #expect(try f.service.auditEntries(limit: 50).allSatisfy { $0.action != "token.admin.revoke" })
        #expect(refusal(f, token.token) == nil)
        // A whole token pasted as the id is refused without being echoed.
        do {
            try f.service.revokeAdminTokens(tokenID: token.token, subject: nil, actor: f.admin)
            Issue.record("a token taken as an id")
        } catch {
            #expect(!error.description.contains(token.token) && !error.description.contains(String(token.token.prefix(20))), "\(error)")
        }
        // An unknown but well-formed id (a typo?) is refused unless forced: then recorded
        // (a token minted with another store's audit log).
        #expect(throws: ServiceError.store(.adminTokenNotFound("AAAAAAAAAAAAAAAAAAAAAA"))) {
            try f.service.revokeAdminTokens(tokenID: "AAAAAAAAAAAAAAAAAAAAAA", subject: nil, actor: f.admin)
        }
        #expect(try rows(f) == 0)
        let forced = try f.service.revokeAdminTokens(tokenID: "AAAAAAAAAAAAAAAAAAAAAA", subject: nil, force: true, actor: f.admin)
        #expect(forced.mintedFor == nil)
        #expect(try rows(f) == 1)
        #expect(refusal(f, token.token) == nil)
        // A name no admin token was minted for (a typo of "alice"?): refused, nothing
        // written, unless forced.
        #expect(throws: ServiceError.store(.adminNeverMinted("alcie"))) {
            try f.service.revokeAdminTokens(tokenID: nil, subject: "alcie", actor: f.admin)
        }
        #expect(try rows(f) == 1)
        _ = try f.service.revokeAdminTokens(tokenID: nil, subject: "alcie", force: true, actor: f.admin)
        #expect(try rows(f) == 2)
        // A known id: the admin it was minted for, and its expiry.
        let known = try f.service.revokeAdminTokens(tokenID: token.claims.tokenID, subject: nil, actor: f.admin)
        #expect(known.mintedFor == "alice" && known.expiresAt == TimeText.format(token.claims.expiresAt))
    }

    @Test("by subject: a token minted in the second of the revocation, or within the clocks' leeway after it, is revoked too; one after that is not", arguments: TestBackend.all)
    func sameSecond(backend: TestBackend) throws {
        let f = try ServiceFixture(backend: backend)
        // Mid-second, so the token's iat and the revocation share their whole second.
        let whole = f.clock.now().timeIntervalSince1970.rounded(.down)
        f.clock.advance(by: whole + 0.25 - f.clock.now().timeIntervalSince1970)
        let minted = try admin(f, "alice")
        f.clock.advance(by: 0.5)
        try f.service.revokeAdminTokens(tokenID: nil, subject: "alice", actor: f.admin)
        #expect(refusal(f, minted.token) == .token(.revoked))
        f.clock.advance(by: 1)
        #expect(refusal(f, try admin(f, "alice").token) == .token(.revoked), "within the leeway")
        f.clock.advance(by: f.service.configuration.tokenLeeway)
        #expect(refusal(f, try admin(f, "alice").token) == nil)
    }

    @Test("pruning drops a revocation only once no token it covers can be valid", arguments: TestBackend.all)
    func prune(backend: TestBackend) throws {
        let f = try ServiceFixture(backend: backend)
        let token = try admin(f, "alice")
        try f.service.revokeAdminTokens(tokenID: nil, subject: "alice", actor: f.admin)
        f.clock.advance(by: TokenLimits.maximumAdminLifetime)
        #expect(try f.service.prune(actor: .system).adminTokenRevocations == 0)
        #expect(try rows(f) == 1)
        f.clock.advance(by: 2 * 3_600)
        let report = try f.service.prune(actor: .system)
        #expect(report.adminTokenRevocations == 1)
        #expect(try rows(f) == 0)
        #expect(try f.service.auditEntries(limit: 10).first { $0.action == "db.prune" }?.details.contains(#""adminTokenRevocations":"1""#) == true)
        #expect(refusal(f, token.token) != nil, "expired by now anyway")
    }
}
