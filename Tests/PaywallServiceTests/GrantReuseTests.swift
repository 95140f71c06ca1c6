import Foundation
import PaywallCore
import PaywallService
import PaywallTestSupport
import Testing

/// Access checks hand the same article grant out again while it is young, and never when
/// the decision, the reader, the article or the signing key differ.
@Suite("Article grants reused by access checks")
struct GrantReuseTests {
    static func fixture() throws -> (ServiceFixture, AccessReader, AccessReader) {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "Euronews SA", actor: f.admin)
        _ = try f.service.addPlan(id: "news", name: "News", period: "month", titles: ["euronews"], actor: f.admin)
        for email in ["member@example.com", "other@example.com"] {
            _ = try f.service.signUp(email: email, password: "correct horse battery", displayName: nil, actor: f.admin)
            _ = try f.service.grantMembership(account: email, plan: "news", until: nil, source: .admin, actor: f.admin)
        }
        return (f, .account(try f.service.account("member@example.com").id), .account(try f.service.account("other@example.com").id))
    }

    static func grant(_ f: ServiceFixture, _ reader: AccessReader, _ article: String = "a1") async throws -> String? {
        try await f.service.checkAccess(AccessRequest(title: "euronews", article: ArticleInput(id: article)), reader: reader).articleGrant?.token
    }

    /// The `kid` of a compact JWS's protected header.
    static func kid(_ token: String) throws -> String? {
        var header = String(token.prefix { $0 != "." }).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while header.count % 4 != 0 { header += "=" }
        let data = try #require(Data(base64Encoded: header))
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["kid"] as? String
    }

    @Test("the same reader and article: the same grant until half its life is gone, then a new one")
    func reusedWhileYoung() async throws {
        let (f, member, _) = try Self.fixture()
        let first = try #require(try await Self.grant(f, member))
        #expect(try await Self.grant(f, member) == first)
        f.clock.advance(by: 149)  // the default grant lives 300 s
        #expect(try await Self.grant(f, member) == first)
        f.clock.advance(by: 2)
        let second = try #require(try await Self.grant(f, member))
        #expect(second != first)
        #expect(try await Self.grant(f, member) == second)
        // The new grant verifies, and was issued at the moved clock.
        let verified = try f.service.verifyToken(second, kinds: [.articleGrant])
        #expect(verified.registered.issuedAt == f.clock.now().roundedDownToSecond)
    }

    @Test("another reader or another article: its own grant")
    func perReaderAndArticle() async throws {
        let (f, member, other) = try Self.fixture()
        let first = try #require(try await Self.grant(f, member, "a1"))
        let otherArticle = try #require(try await Self.grant(f, member, "a2"))
        let otherReader = try #require(try await Self.grant(f, other, "a1"))
        #expect(Set([first, otherArticle, otherReader]).count == 3)
        #expect(try f.service.verifyToken(otherReader, kinds: [.articleGrant]).registered.subject == (try f.service.account("other@example.com").id.rawValue))
    }

    @Test("an article id precomposed and decomposed (\"café\", NFC and NFD): two articles, each grant naming its own")
    func articleIdsByBytes() async throws {
        let (f, member, _) = try Self.fixture()
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        let first = try #require(try await Self.grant(f, member, composed))
        let second = try #require(try await Self.grant(f, member, decomposed))
        #expect(first != second)
        // Each is reused for the same bytes again.
        #expect(try await Self.grant(f, member, composed) == first)
        #expect(try await Self.grant(f, member, decomposed) == second)
        for (token, article) in [(first, composed), (second, decomposed)] {
            guard case let .articleGrant(claims) = try f.service.verifyToken(token, kinds: [.articleGrant]) else {
                Issue.record("not an article grant")
                continue
            }
            #expect(Array(claims.article.utf8) == Array(article.utf8))
        }
    }

    @Test("a decision that is no longer full gets no grant, cached or not")
    func notFullNoGrant() async throws {
        let (f, member, _) = try Self.fixture()
        #expect(try await Self.grant(f, member) != nil)
        _ = try f.service.cancelMembership(account: "member@example.com", plan: "news", immediately: true, actor: f.admin)
        // The shipped policy gives signed-in readers metered articles; spend them first.
        for index in 0..<10 { _ = try await Self.grant(f, member, "spend-\(index)") }
        #expect(try await Self.grant(f, member) == nil)
    }

    @Test("a new signing key: new grants, signed by it")
    func newKeyNewGrant() async throws {
        let (f, member, _) = try Self.fixture()
        let first = try #require(try await Self.grant(f, member))
        let key = try f.service.rotateKey(.es256, publishAhead: 0, actor: f.admin)
        let second = try #require(try await Self.grant(f, member))
        #expect(second != first)
        _ = try f.service.verifyToken(second, kinds: [.articleGrant])
        #expect(try Self.kid(second) == key.kid)
        #expect(try Self.kid(first) != key.kid)
    }
}

extension Date {
    var roundedDownToSecond: Date { Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.down)) }
}
