import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PaywallCore
@testable import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallTokens
import Testing

@Suite("Comp grants: POST /v1/access with a comp")
struct CompAccessTests {
    static func body(title: String, article: String, comp: String) -> String {
        let object: [String: Any] = ["title": title, "article": ["id": article], "comp": comp]
        let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data ?? Data(), as: UTF8.self)
    }

    static func comp(_ f: ServiceFixture, _ email: String, titles: [String], days: Int = 7) throws -> String {
        try f.service.issueCompGrant(account: email, titles: titles, days: days, audience: nil, actor: f.admin).token
    }

    @Test("the reader it was given to reads its titles in full, no meter used; elsewhere the policy decides")
    func honoured() async throws {
        let f = try seededFixture()
        let reader = try accessToken(f, "reader@example.com")
        let comp = try Self.comp(f, "reader@example.com", titles: ["le-monde", "the-daily"])
        let before = try f.snapshot()
        let (covered, other, plain) = try await withAPI(f) { client in
            (try await client.post("/v1/access", Self.body(title: "le-monde", article: "c1", comp: comp), token: reader),
             try await client.post("/v1/access", Self.body(title: "euronews", article: "c2", comp: comp), token: reader),
             try await client.access(title: "le-monde", article: "c3", token: reader))
        }
        #expect(covered.status == .ok, "\(covered.text)")
        let answer = try covered.object()
        #expect(answer["access"] as? String == "full")
        #expect(answer["decidingRules"] as? [String] == ["comp grant"])
        #expect(answer["meter"] == nil)
        let grant = try #require(answer["articleGrant"] as? String)
        #expect(try claims(of: grant)["title"] as? String == "le-monde")
        // Not a comp title: the policy decides, and the meter counts it.
        #expect(other.status == .ok, "\(other.text)")
        #expect(try other.object()["decidingRules"] as? [String] != ["comp grant"])
        #expect(try ((try other.object()["meter"] as? [String: Any])?["used"] as? Int) == 1)
        // Without the comp, the same reader is metered on the comp's title too.
        #expect(try plain.object()["decidingRules"] as? [String] != ["comp grant"])
        #expect(try f.snapshot()["reads"] == (before["reads"] ?? 0) + 2, "only the two checks without a comp title used the meter")
    }

    @Test("refused, nothing written: another reader's, no reader, another kind, forged", arguments: [
        "another-reader", "anonymous", "gift-kind", "forged",
    ])
    func refused(_ scenario: String) async throws {
        let f = try seededFixture()
        var comp = try Self.comp(f, "reader@example.com", titles: ["le-monde"], days: 1)
        var bearer: String? = try accessToken(f, "reader@example.com")
        switch scenario {
        case "another-reader": bearer = try accessToken(f, "member@example.com")
        case "anonymous": bearer = nil
        case "gift-kind":
            let member = try accessToken(f, "member@example.com")
            let created = try await withAPI(f) { client in try await client.post("/v1/gifts", #"{"title":"euronews","article":"a1"}"#, token: member) }
            comp = try #require(try created.object()["giftToken"] as? String)
        default:
            comp = String(comp.dropLast(4)) + (comp.hasSuffix("AAAA") ? "BBBB" : "AAAA")
        }
        let before = try f.snapshot()
        let response = try await withAPI(f) { [bearer, comp] client in
            try await client.post("/v1/access", Self.body(title: "le-monde", article: "c1", comp: comp), token: bearer)
        }
        #expect(response.status == .forbidden, "\(response.text)")
        #expect(response.errorCode == "invalid_comp")
        #expect(try response.object()["articleGrant"] == nil)
        #expect(try f.snapshot() == before)
    }

    @Test("a deleted account's access token opens nothing with a comp either: 401, as without one, and nothing written")
    func deletedAccount() async throws {
        let f = try seededFixture()
        let reader = try accessToken(f, "reader@example.com")
        let comp = try Self.comp(f, "reader@example.com", titles: ["le-monde"])
        _ = try f.service.deleteAccount("reader@example.com", actor: f.admin)
        let before = try f.snapshot()
        let (withComp, without) = try await withAPI(f) { client in
            (try await client.post("/v1/access", Self.body(title: "le-monde", article: "c1", comp: comp), token: reader),
             try await client.access(title: "le-monde", article: "c1", token: reader))
        }
        #expect(without.status == .unauthorized && without.errorCode == "invalid_token", "\(without.text)")
        #expect(withComp.status == .unauthorized && withComp.errorCode == "invalid_token", "\(withComp.text)")
        #expect(!withComp.text.contains("articleGrant"))
        #expect(try f.snapshot() == before)
    }

    @Test("an expired comp, or one for other titles, gives nothing and takes nothing: the policy decides, a member still reads their plan")
    func expiredOrElsewhere() async throws {
        let f = try seededFixture()
        let memberComp = try Self.comp(f, "member@example.com", titles: ["the-daily"], days: 1)
        let readersComp = try Self.comp(f, "reader@example.com", titles: ["the-daily"], days: 1)
        let member = try accessToken(f, "member@example.com")
        // Another reader's comp for other titles: not this check's business.
        let elsewhere = try await withAPI(f) { client in
            try await client.post("/v1/access", Self.body(title: "euronews", article: "m1", comp: readersComp), token: member)
        }
        #expect(elsewhere.status == .ok, "\(elsewhere.text)")
        #expect(try elsewhere.object()["decidingRules"] as? [String] != ["comp grant"])
        f.clock.advance(by: 86_400 + 60)
        let (own, compTitle) = try await withAPI(f) { client in
            (try await client.post("/v1/access", Self.body(title: "euronews", article: "m2", comp: memberComp), token: try accessToken(f, "member@example.com")),
             try await client.post("/v1/access", Self.body(title: "the-daily", article: "m3", comp: memberComp), token: try accessToken(f, "member@example.com")))
        }
        #expect(own.status == .ok, "the member's own plan: \(own.text)")
        #expect(try own.object()["access"] as? String == "full")
        #expect(compTitle.status == .ok, "\(compTitle.text)")
        #expect(try compTitle.object()["decidingRules"] as? [String] != ["comp grant"], "expired: the policy decides")
    }

    @Test("a preview's items carry no comp")
    func notInPreviews() async throws {
        let f = try seededFixture()
        let reader = try accessToken(f, "reader@example.com")
        let comp = try Self.comp(f, "reader@example.com", titles: ["le-monde"])
        let body = #"{"articles":[\#(Self.body(title: "le-monde", article: "c1", comp: comp))]}"#
        let response = try await withAPI(f) { client in try await client.post("/v1/access/preview", body, token: reader) }
        #expect(response.status == .badRequest, "\(response.text)")
        #expect(response.errorCode == "unknown_field")
    }
}
