import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PaywallCore
@testable import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallTokens
import Testing

@Suite("Gift links: POST /v1/gifts and POST /v1/access with a gift")
struct GiftRouteTests {
    static func accessBody(title: String = "euronews", article: String, gift: String?) -> String {
        var object: [String: Any] = ["title": title, "article": ["id": article]]
        if let gift { object["gift"] = gift }
        let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data ?? Data(), as: UTF8.self)
    }

    @Test("a member gives an article; anyone reads it in full, recorded as a gift read, no meter used", arguments: TestBackend.all)
    func giveAndRead(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let member = try accessToken(f, "member@example.com")
        let reader = try accessToken(f, "reader@example.com")
        let created = try await withAPI(f) { client in try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#, token: member) }
        #expect(created.status == .created, "\(created.text)")
        #expect(created.headers[.cacheControl] == "private, no-store")
        let body = try created.object()
        let gift = try #require(body["giftToken"] as? String)
        #expect(body["expiresAt"] as? String == "2026-01-08T00:00:00Z")
        #expect(body["giftsUsedThisMonth"] as? Int == 1 && body["monthlyLimit"] as? Int == 10)
        #expect(try claims(of: gift)["title"] as? String == "euronews")

        let readsBefore = try f.snapshot()["reads"]
        let (asReader, asAnonymous) = try await withAPI(f) { client in
            (try await client.post("/v1/access", Self.accessBody(article: "a1", gift: gift), token: reader),
             try await client.post("/v1/access", Self.accessBody(article: "a1", gift: gift)))
        }
        for response in [asReader, asAnonymous] {
            #expect(response.status == .ok, "\(response.text)")
            let object = try response.object()
            #expect(object["access"] as? String == "full")
            #expect(object["decidingRules"] as? [String] == ["gift"])
            #expect(object["meter"] == nil)
            #expect(object["articleGrant"] is String)
        }
        let counts = try f.snapshot()
        #expect(counts["reads"] == readsBefore, "a gift read uses no meter")
        #expect(counts["gift_reads"] == 2)
        // The reader's meter is untouched: three free articles still.
        let check = try await withAPI(f) { client in try await client.access(article: "b1", token: reader) }
        #expect(try ((try check.object()["meter"] as? [String: Any])?["used"] as? Int) == 1)
        // Publishers see the gift reads.
        let report = try f.service.readsReport(from: f.clock.now().addingTimeInterval(-60), to: f.clock.now().addingTimeInterval(60), title: "euronews",
                                               by: AdminPrincipal(name: "t", scopes: [.audit], tokenID: "t"))
        #expect(report.titles.first?.giftReads == 2 && report.titles.first?.giftArticles == 1)
    }

    @Test("who may give: members of the title only; bad input refused; nothing written", arguments: TestBackend.all)
    func whoMayGive(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let member = try accessToken(f, "member@example.com")
        let reader = try accessToken(f, "reader@example.com")
        let trial = try accessToken(f, "trial@example.com")
        let device = try f.service.issueDeviceToken(renewing: nil).token
        let admin = try adminToken(f)
        let before = try f.snapshot()
        let responses = try await withAPI(f) { client in
            [try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#),
             try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#, token: reader),
             try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#, token: trial),
             try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#, token: device),
             try await client.post("/v1/gifts", #"{"title":"the-daily","article":"a1"}"#, token: member),
             try await client.post("/v1/gifts", #"{"title":"nope","article":"a1"}"#, token: member),
             try await client.post("/v1/gifts", #"{"title":"euronews"}"#, token: member),
             try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1","for":"x"}"#, token: member),
             try await client.post("/v1/gifts", #"{"title":"euronews","article":""}"#, token: member),
             try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#, token: admin),
             try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#, token: "not-a-token"),
             try await client.post("/v1/gifts", "title=euronews", token: member, contentType: "text/plain")]
        }
        #expect(responses.map(\.status) == [.unauthorized, .forbidden, .forbidden, .forbidden, .forbidden, .notFound, .badRequest, .badRequest, .badRequest, .unauthorized, .unauthorized, .unsupportedMediaType])
        #expect(responses.map(\.errorCode) == ["token_required", "not_entitled", "not_entitled", "not_entitled", "not_entitled", "title_not_found", "missing_field", "unknown_field", "invalid_value", "invalid_token", "invalid_token", "unsupported_media_type"])
        #expect(try f.snapshot() == before)
    }

    @Test("gift links refused on access: another article, expired, forged, withdrawn, not a gift; nothing recorded", arguments: TestBackend.all)
    func refusedGifts(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let member = try accessToken(f, "member@example.com")
        let gift = try await withAPI(f) { client in
            try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#, token: member).object()["giftToken"] as? String
        }
        let token = try #require(gift)
        let forged = String(token.dropLast(4)) + (token.hasSuffix("AAAA") ? "BBBB" : "AAAA")
        let before = try f.snapshot()
        let responses = try await withAPI(f) { client in
            [try await client.post("/v1/access", Self.accessBody(article: "a2", gift: token)),
             try await client.post("/v1/access", Self.accessBody(title: "le-monde", article: "a1", gift: token)),
             try await client.post("/v1/access", Self.accessBody(article: "a1", gift: forged)),
             try await client.post("/v1/access", Self.accessBody(article: "a1", gift: member)),
             try await client.post("/v1/access", Self.accessBody(article: "a1", gift: "junk"))]
        }
        for response in responses {
            #expect(response.status == .forbidden, "\(response.text)")
            #expect(response.errorCode == "invalid_gift")
            #expect(response.errorMessage == "the gift link is not valid for this article, or has expired")
        }
        f.clock.advance(by: 7 * 86_400 + 60)
        let expired = try await withAPI(f) { client in try await client.post("/v1/access", Self.accessBody(article: "a1", gift: token)) }
        #expect(expired.status == .forbidden && expired.errorCode == "invalid_gift")
        f.clock.advance(by: -(7 * 86_400 + 60))
        _ = try f.service.deleteAccount("member@example.com", actor: f.admin)
        let withdrawn = try await withAPI(f) { client in try await client.post("/v1/access", Self.accessBody(article: "a1", gift: token)) }
        #expect(withdrawn.status == .forbidden && withdrawn.errorCode == "invalid_gift")
        #expect(try f.snapshot()["gift_reads"] == before["gift_reads"])
        #expect(try f.snapshot()["reads"] == before["reads"])
    }

    @Test("the monthly limit: refused past it with a stable code, allowed again next month")
    func monthlyLimit() async throws {
        let f = try seededFixture { $0.giftsPerMonth = 2 }
        // A membership lasting into next month.
        _ = try await f.service.grantMembership(account: "reader@example.com", plan: "news", until: Date(timeIntervalSince1970: 1_780_000_000), source: .admin, actor: f.admin)
        let member = try accessToken(f, "reader@example.com")
        let responses = try await withAPI(f) { client in
            var all: [TestResponse] = []
            for article in ["a1", "a2", "a3"] { all.append(try await client.post("/v1/gifts", #"{"title":"euronews","article":"\#(article)"}"#, token: member)) }
            return all
        }
        #expect(responses.map(\.status) == [.created, .created, .forbidden])
        #expect(responses.last?.errorCode == "gift_limit_reached")
        #expect(responses.last?.errorMessage?.contains("2026-02-01") == true)
        #expect(try f.snapshot()["gifts"] == 2)
        f.clock.set(Date(timeIntervalSince1970: 1_769_904_000))  // 2026-02-01T00:00:00Z
        let member2 = try accessToken(f, "reader@example.com")
        let next = try await withAPI(f) { client in try await client.post("/v1/gifts", #"{"title":"euronews","article":"a4"}"#, token: member2) }
        #expect(try next.status == .created && (try next.object()["giftsUsedThisMonth"] as? Int) == 1)
    }

    @Test("the monthly limit is exact under concurrency")
    func concurrentLimit() async throws {
        let f = try seededFixture { $0.giftsPerMonth = 5 }
        let member = try accessToken(f, "member@example.com")
        let statuses = try await withAPI(f) { client in
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<20 {
                    group.addTask { try await client.post("/v1/gifts", #"{"title":"euronews","article":"c\#(index)"}"#, token: member).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(statuses.filter { $0 == .created }.count == 5)
        #expect(statuses.filter { $0 == .forbidden }.count == 15)
        #expect(try f.snapshot()["gifts"] == 5)
    }

    @Test("gifts turned off (limit 0): refused")
    func turnedOff() async throws {
        let f = try seededFixture { $0.giftsPerMonth = 0 }
        let member = try accessToken(f, "member@example.com")
        let response = try await withAPI(f) { client in try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#, token: member) }
        #expect(response.status == .forbidden && response.errorCode == "gift_limit_reached")
        #expect(try f.snapshot()["gifts"] == 0)
    }
}
