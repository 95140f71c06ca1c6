import Foundation
import PaywallCore
import PaywallTestSupport
import PaywallTokens
import Testing
@testable import PaywallService
@testable import PaywallStore

/// Gift links carry an audience of their own: they have an article grant's shape, and a
/// content server checking a grant's claims (many JWT libraries ignore `typ`) must not
/// take a month-long gift link for a five-minute grant (RFC 8725 §3.9, §3.11).
@Suite("Gift links' audience")
struct GiftAudienceTests {
    @Test("a gift link's aud is the service's with #gift: refused where a grant's audience is checked; a link made with the old audience still reads, another audience does not")
    func audience() async throws {
        let f = try ServiceFixture()
        _ = try f.service.loadDemoData(actor: f.admin)
        let member = try f.service.account("member@example.com").id
        let given = try f.service.createGift(reader: .account(member), title: "euronews", article: "a1")
        let verifier = try f.service.tokenVerifier()
        guard case let .gift(claims) = try verifier.verify(given.token, expecting: [.gift], audience: "paywall-api#gift") else {
            Issue.record("not a gift link")
            return
        }
        #expect(claims.registered.audience == ["paywall-api#gift"])
        // What a content server checks of an article grant: signature, iss, aud, times.
        #expect(throws: TokenError.wrongAudience) { _ = try verifier.verify(given.token, expecting: [.gift, .articleGrant], audience: "paywall-api") }
        let read = try await f.service.checkAccess(AccessRequest(title: "euronews", article: ArticleInput(id: "a1"), gift: given.token), reader: .anonymous)
        #expect(read.decision.access == .full)

        // Links made before (the service's own audience) and one of another audience, on record.
        let (issuer, _) = try f.service.issuer()
        for (audience, article, reads) in [("paywall-api", "a2", true), ("another-api", "a3", false)] {
            let (token, made) = try issuer.giftToken(subject: member.rawValue, audience: audience, title: "euronews", article: article, lifetime: 86_400)
            _ = try f.service.store.createGift(Gift(
                id: made.registered.tokenID, accountID: member, titleID: TitleID(rawValue: "euronews"), articleID: article,
                createdAt: made.registered.issuedAt, expiresAt: made.registered.expiresAt), limit: 10)
            // What `paywall token verify --kind gift` asks: the same answer as the route's.
            do throws(ServiceError) {
                _ = try f.service.verifyGiftLink(token)
                #expect(reads, "\(audience) verified")
            } catch {
                #expect(!reads && error == .token(.wrongAudience), "\(audience): \(error)")
            }
            let request = AccessRequest(title: "euronews", article: ArticleInput(id: article), gift: token)
            do throws(ServiceError) {
                let answer = try await f.service.checkAccess(request, reader: .anonymous)
                #expect(reads && answer.decision.access == .full, "\(audience)")
            } catch {
                #expect(!reads, "\(audience): \(error)")
                guard case .giftRefused = error else { Issue.record("\(audience): \(error)"); continue }
            }
        }
    }
}
