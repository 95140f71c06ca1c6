import Foundation
import PaywallCore
import Testing
@testable import PaywallTokens

@Suite("Admin tokens and gift links")
struct AdminGiftTokenTests {
    @Test("an admin token round-trips with its scopes as one space-separated claim")
    func adminRoundTrip() throws {
        let t = try TokenFixture()
        let (token, claims) = try t.issuer.adminToken(subject: "alice", audience: "api", scopes: [.members, .catalog], lifetime: 900)
        guard case let .admin(verified) = try t.verifier.verify(token, expecting: [.admin], audience: "api") else {
            Issue.record("not an admin token")
            return
        }
        #expect(verified == claims)
        #expect(verified.scopes == [.catalog, .members])
        #expect(verified.json.objectValue?["scope"]?.stringValue == "catalog members")
        #expect(try UnverifiedToken(token).header.objectValue?["typ"]?.stringValue == "paywall-admin+jwt")
    }

    @Test("kinds never stand in for each other: admin, gift, access")
    func noConfusion() throws {
        let t = try TokenFixture()
        let (admin, _) = try t.issuer.adminToken(subject: "alice", audience: "api", scopes: [.audit], lifetime: 900)
        let (gift, _) = try t.issuer.giftToken(subject: "acc-1", audience: "api", title: "euronews", article: "a1", lifetime: 900)
        let (access, _) = try t.issuer.accessToken(subject: "acc-1", audience: "api", lifetime: 900, entitlements: EntitlementSnapshot(memberships: [], trialEndsAt: nil))
        #expect(throws: TokenError.self) { try t.verifier.verify(admin, expecting: [.access, .device], audience: "api") }
        #expect(throws: TokenError.self) { try t.verifier.verify(gift, expecting: [.admin], audience: "api") }
        #expect(throws: TokenError.self) { try t.verifier.verify(access, expecting: [.admin, .gift], audience: "api") }
        guard case let .gift(claims) = try t.verifier.verify(gift, expecting: [.gift], audience: "api") else {
            Issue.record("not a gift")
            return
        }
        #expect(claims.title == "euronews" && claims.article == "a1")
    }

    @Test("admin scope claims: empty, missing or only unknown scopes are refused", arguments: [
        #","scope":"superuser""#, #","scope":"superuser root""#, #","scope":"""#, #","scope":" ""#, "", #","scope":["catalog"]"#,
    ])
    func badScopes(extra: String) throws {
        let t = try TokenFixture()
        let payload = #"{"iss":"paywall","sub":"alice","aud":"api","iat":\#(t.now),"exp":\#(t.now + 600),"jti":"j"\#(extra)}"#
        let token = try t.forge(header: #"{"alg":"ES256","kid":"\#(t.kid)","typ":"paywall-admin+jwt"}"#, payload: payload)
        #expect(throws: TokenError.self) { try t.verifier.verify(token, expecting: [.admin], audience: "api") }
    }

    @Test("a scope this version does not know (a newer server's) is ignored, not the token: it opens only what it names that is known")
    func unknownScopeIgnored() throws {
        let t = try TokenFixture()
        let payload = #"{"iss":"paywall","sub":"alice","aud":"api","iat":\#(t.now),"exp":\#(t.now + 600),"jti":"j","scope":"audit superuser"}"#
        let token = try t.forge(header: #"{"alg":"ES256","kid":"\#(t.kid)","typ":"paywall-admin+jwt"}"#, payload: payload)
        guard case let .admin(claims) = try t.verifier.verify(token, expecting: [.admin], audience: "api") else {
            Issue.record("not an admin token")
            return
        }
        #expect(claims.scopes == [.audit])
    }

    @Test("an expired admin token is refused")
    func expired() throws {
        let t = try TokenFixture()
        let (token, _) = try t.issuer.adminToken(subject: "alice", audience: "api", scopes: [.policy], lifetime: 60)
        t.clock.advance(by: 120)
        #expect(throws: TokenError.self) { try t.verifier.verify(token, expecting: [.admin], audience: "api") }
    }

    @Test("the kinds' names")
    func names() {
        #expect(TokenKind(name: "admin") == .admin && TokenKind(name: "gift") == .gift)
        #expect(TokenKind(typ: "application/paywall-gift+jwt") == .gift)
    }
}
