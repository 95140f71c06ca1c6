import Foundation
import Testing
import PaywallTestSupport
import PaywallCore
import PaywallCrypto
import PaywallTokens
@testable import PaywallService
@testable import PaywallStore

@Suite("Tokens through the service")
struct TokenServiceTests {
    func fixture() throws -> ServiceFixture {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        _ = try f.service.addTitle(id: "the-daily", name: "The Daily", publisher: "D", actor: f.admin)
        _ = try f.service.addPlan(id: "news", name: "News", period: "month", titles: ["euronews"], actor: f.admin)
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        return f
    }

    @Test("the first token creates a development key; access tokens carry the live entitlements")
    func accessToken() throws {
        let f = try fixture()
        #expect(try f.service.keyRing().records.isEmpty)
        let m = try f.service.grantMembership(account: "ada@example.com", plan: "news", until: nil, source: .admin, actor: f.admin)
        _ = try f.service.startTrial(account: "ada@example.com", actor: f.admin)
        let issued = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil)
        #expect(try f.service.keyRing().records.count == 1)
        #expect(try f.service.store.auditEntries().contains { $0.action == "key.generate" })
        guard case let .access(claims) = try f.service.verifyToken(issued.token, kinds: Set(TokenKind.allCases), audience: nil) else {
            Issue.record("not an access token")
            return
        }
        #expect(claims.registered.expiresAt.timeIntervalSince(claims.registered.issuedAt) == 15 * 60)
        #expect(claims.entitlements.memberships.map(\.plan.rawValue) == ["news"])
        #expect(claims.entitlements.memberships.first?.titles == .titles([TitleID(rawValue: "euronews")]))
        #expect(claims.entitlements.trialEndsAt == f.clock.now().addingTimeInterval(14 * 86_400))

        // Past the period end the membership no longer appears; past due shows its grace.
        _ = try f.service.store.changeStatus(id: m.id, to: .pastDue, graceEnd: f.clock.now().addingTimeInterval(40 * 86_400), actor: .system, reason: nil)
        f.clock.advance(by: 35 * 86_400)
        let later = try f.service.entitlements(accountID: f.service.account("ada@example.com").id)
        #expect(later.memberships.first?.status == .pastDue)
        #expect(later.trialEndsAt == nil)
        f.clock.advance(by: 6 * 86_400)
        #expect(try f.service.entitlements(accountID: f.service.account("ada@example.com").id).memberships.isEmpty)
        // An account that is not there has no entitlements to carry: refused, not empty.
        #expect(throws: ServiceError.store(.accountNotFound("acct_nobody"))) { try f.service.entitlements(accountID: AccountID(rawValue: "acct_nobody")) }
    }

    @Test("a membership ending past what a NumericDate holds (a provider's, or stored before the limit) still gives a token that verifies")
    func farFutureEnd() throws {
        let f = try fixture()
        let account = try f.service.account("ada@example.com")
        // Past 10^11 seconds (year 5138): the claim is written at the latest date a verifier reads.
        let farAway = Date(timeIntervalSince1970: 253_402_300_799 * 2)
        _ = try f.service.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "news"), periodEnd: farAway, source: .admin, actor: f.admin)
        let issued = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil)
        guard case let .access(claims) = try f.service.verifyToken(issued.token, kinds: [.access], audience: nil) else {
            Issue.record("not an access token")
            return
        }
        #expect(claims.entitlements.memberships.first?.periodEnd == Date(timeIntervalSince1970: 1e11 - 1))
        // The admin's own paths refuse such an end, naming the limit.
        #expect(throws: ServiceError.self) {
            try f.service.grantMembership(account: "ada@example.com", plan: "news", until: Date(timeIntervalSince1970: 253_402_300_799), source: .comp, actor: f.admin)
        }
    }

    @Test("grants and comps: validated, comps audited; bad requests write nothing")
    func grantsAndComps() throws {
        let f = try fixture()
        let account = try f.service.account("ada@example.com")
        let grant = try f.service.issueArticleGrant(subject: .device("dev-1"), title: "euronews", article: "a1", lifetime: nil, audience: "cdn")
        #expect(grant.claims.subject == "device:dev-1")
        guard case let .articleGrant(claims) = try f.service.verifyToken(grant.token, kinds: Set(TokenKind.allCases), audience: "cdn") else { Issue.record("kind"); return }
        #expect(claims.title == "euronews" && claims.article == "a1")
        #expect(throws: ServiceError.token(.wrongAudience)) { try f.service.verifyToken(grant.token, kinds: Set(TokenKind.allCases), audience: nil) }

        let comp = try f.service.issueCompGrant(account: account.id.rawValue, titles: ["euronews", "the-daily", "euronews"], days: 7, audience: nil, actor: f.admin)
        guard case let .comp(compClaims) = try f.service.verifyToken(comp.token, kinds: Set(TokenKind.allCases), audience: nil) else { Issue.record("kind"); return }
        #expect(compClaims.titles == ["euronews", "the-daily"])
        #expect(compClaims.registered.expiresAt.timeIntervalSince(compClaims.registered.issuedAt) == 7 * 86_400)
        let audit = try #require(try f.service.store.auditEntries(target: "account:\(account.id)").first)
        #expect(audit.action == "token.comp")
        #expect(audit.details.contains(compClaims.registered.tokenID))

        let before = try f.counts()
        #expect(throws: ServiceError.self) { try f.service.issueCompGrant(account: "ada@example.com", titles: ["nope"], days: 7, audience: nil, actor: f.admin) }
        #expect(throws: ServiceError.self) { try f.service.issueCompGrant(account: "ada@example.com", titles: ["euronews"], days: 32, audience: nil, actor: f.admin) }
        #expect(throws: ServiceError.self) { try f.service.issueCompGrant(account: "ada@example.com", titles: [], days: 7, audience: nil, actor: f.admin) }
        #expect(throws: ServiceError.self) { try f.service.issueCompGrant(account: "nobody@example.com", titles: ["euronews"], days: 7, audience: nil, actor: f.admin) }
        #expect(throws: ServiceError.self) { try f.service.issueArticleGrant(subject: .device("d"), title: "nope", article: "a", lifetime: nil, audience: nil) }
        #expect(throws: ServiceError.self) { try f.service.issueArticleGrant(subject: .device("d"), title: "euronews", article: "a", lifetime: 7_200, audience: nil) }
        #expect(throws: ServiceError.self) { try f.service.issueAccessToken(account: "ada@example.com", lifetime: 2 * 86_400, audience: nil) }
        #expect(try f.counts() == before)
    }

    @Test("a token of a retired key no longer verifies; one of a rotated-out key still does")
    func rotation() throws {
        let f = try fixture()
        let first = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil)
        let next = try f.service.rotateKey(.ed25519, publishAhead: 600, actor: f.admin)
        #expect(try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil).kid == first.kid)
        f.clock.advance(by: 600)
        let second = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil)
        #expect(second.kid == next.kid)
        _ = try f.service.verifyToken(first.token, kinds: Set(TokenKind.allCases), audience: nil)
        #expect(throws: ServiceError.self) { try f.service.retireKey(kid: next.kid, force: false, actor: f.admin) }
        _ = try f.service.retireKey(kid: first.kid, force: true, actor: f.admin)
        #expect(throws: ServiceError.token(.unknownKey(first.kid))) { try f.service.verifyToken(first.token, kinds: Set(TokenKind.allCases), audience: nil) }
        _ = try f.service.verifyToken(second.token, kinds: Set(TokenKind.allCases), audience: nil)
    }

    @Test("a key retired by another process stops verifying in a running server once it looks at the folder again")
    func retiredElsewhere() throws {
        let f = try fixture()
        let server = try f.another()  // a server on the same keys folder
        let first = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil)
        #expect(try server.accessReader(bearer: first.token) == .account(try f.service.account("ada@example.com").id, signOuts: 0))
        #expect(try server.refreshKeysIfChanged() == nil, "nothing changed")
        let next = try f.service.rotateKey(.ed25519, publishAhead: 0, actor: f.admin)
        _ = try f.service.retireKey(kid: first.kid, force: true, actor: f.admin)
        // What it loaded before still trusts the retired key (and its cache holds the token).
        _ = try server.accessReader(bearer: first.token)
        let reloaded = try #require(try server.refreshKeysIfChanged(), "the manifest changed")
        #expect(reloaded.records.contains { $0.kid == next.kid })
        #expect(throws: ServiceError.token(.unknownKey(first.kid))) { try server.accessReader(bearer: first.token) }
        #expect(try server.refreshKeysIfChanged() == nil, "and nothing more until it changes again")
        let fresh = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil)
        #expect(fresh.kid == next.kid)
        _ = try server.accessReader(bearer: fresh.token)

        // The folder moved aside for a moment (a deploy swapping it): an empty ring is
        // refused, the one in force stays and goes on verifying and signing.
        let folder = f.service.configuration.keysDirectory
        let aside = folder.deletingLastPathComponent().appendingPathComponent(folder.lastPathComponent + ".aside")
        try FileManager.default.moveItem(at: folder, to: aside)
        #expect(throws: ServiceError.keys(.noSigningKey(path: folder.path))) { try server.reloadKeys() }
        _ = try server.accessReader(bearer: fresh.token)
        #expect(try server.jwks().keys.isEmpty == false, "the JWKS still names the keys")
        try FileManager.default.moveItem(at: aside, to: folder)
    }
}

@Suite("A key change whose audit entry cannot be written")
struct KeyChangeAuditMissingTests {
    @Test("is said as made (audit_missing, do not run it again), not as a database error that nothing happened")
    func saidAsMade() throws {
        let f = try ServiceFixture()
        let first = try f.service.generateKey(.es256, actor: f.admin)
        try f.service.close()  // the database is gone; the key folder is not
        do {
            let second = try f.service.generateKey(.es256, actor: f.admin)
            Issue.record("generated \(second.kid) and said nothing of the audit")
        } catch {
            #expect(error.code == "audit_missing", "\(error)")
            #expect(error.description.contains("key.generate of key") && error.description.contains("do not run it again"), "\(error.description)")
        }
        // The change stands: a second key is in the folder beside the first.
        let ring = try KeyRing.load(directory: f.service.configuration.keysDirectory)
        #expect(ring.records.count == 2 && ring.records.contains { $0.kid == first.kid }, "\(ring.records.map(\.kid))")
    }
}

@Suite("Comp grants' titles")
struct CompTitlesCapTests {
    @Test("at most 100 titles a comp, for every caller (the CLI's too); past it refused, nothing audited")
    func capped() throws {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "Euronews SA", actor: f.admin)
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let before = try f.snapshot()
        do {
            _ = try f.service.issueCompGrant(account: "ada@example.com", titles: Array(repeating: "euronews", count: 101), days: 7, audience: nil, actor: f.admin)
            Issue.record("a comp of 101 titles was issued")
        } catch {
            #expect(error.code == "invalid_value" && error.description.contains("at most 100"), "\(error)")
        }
        #expect(try f.snapshot() == before)
        #expect(try f.service.issueCompGrant(account: "ada@example.com", titles: Array(repeating: "euronews", count: 100), days: 7, audience: nil, actor: f.admin).kind == .comp)
    }
}
