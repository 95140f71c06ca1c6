import Foundation
import HTTPTypes
import HummingbirdTesting
import PaywallCore
import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallTokens
import Testing

@Suite("POST /v1/access in process")
struct AccessRouteTests {
    @Test("anonymous: the teaser, sign up / sign in / a 14-day trial, no grant, private and uncached", arguments: TestBackend.all)
    func anonymous(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let before = try f.snapshot()
        let response = try await withAPI(f) { client in try await client.access(article: "a1") }
        #expect(response.status == .ok)
        #expect(response.headers[.cacheControl] == "private, no-store")
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        let body = try response.object()
        #expect(body["access"] as? String == "teaser")
        #expect(body["teaserParagraphs"] as? Int == 2, "euronews shows two paragraphs")
        #expect(offers(body) == ["signUp", "signIn", "trial:14"])
        #expect(body["articleGrant"] == nil)
        #expect(body["meter"] == nil, "no meter for an anonymous reader without a device")
        #expect((body["policyRevision"] as? String)?.isEmpty == false)
        #expect((body["decidingRules"] as? [String])?.isEmpty == false)
        let ld = try #require(body["jsonLd"] as? [String: Any])
        #expect(ld["@context"] as? String == "https://schema.org")
        #expect(ld["isAccessibleForFree"] as? Bool == false)
        #expect((ld["hasPart"] as? [String: Any])?["cssSelector"] as? String == ".paywalled")
        #expect(try f.snapshot() == before, "an anonymous check records nothing")
    }

    @Test("a member reads the plan's titles in full, with a verifiable article grant; a teaser elsewhere", arguments: TestBackend.all)
    func member(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let token = try accessToken(f, "member@example.com")
        let account = try f.service.account("member@example.com")
        let (inPlan, otherPlan, outside) = try await withAPI(f) { client in
            (try await client.access(title: "euronews", article: "e-1", token: token),
             try await client.access(title: "le-monde", article: "m-7", token: token),
             try await client.access(title: "the-daily", article: "d-1", token: token))
        }
        for (response, title, article) in [(inPlan, "euronews", "e-1"), (otherPlan, "le-monde", "m-7")] {
            #expect(response.status == .ok)
            let body = try response.object()
            #expect(body["access"] as? String == "full", "\(title)")
            #expect(body["decidingRules"] as? [String] == ["members read the titles in their plan"])
            let grant = try #require(body["articleGrant"] as? String)
            guard case let .articleGrant(claims) = try f.service.verifyToken(grant, kinds: [.articleGrant]) else {
                Issue.record("not an article grant")
                continue
            }
            #expect(claims.title == title && claims.article == article)
            #expect(claims.registered.subject == account.id.rawValue)
            #expect(body["articleGrantExpiresAt"] as? String == iso(claims.registered.expiresAt))
            #expect(body["meter"] == nil, "members use no meter")
            #expect((body["jsonLd"] as? [String: Any])?["isAccessibleForFree"] as? Bool == false, "paid content, even when shown in full")
        }
        let body = try outside.object()
        #expect(outside.status == .ok)
        #expect(body["access"] as? String == "full", "the-daily is metered for a signed-in reader: first of three")
        // The member's plan does not cover the-daily: three metered reads, then the teaser.
        let (second, third, fourth) = try await withAPI(f) { client in
            (try await client.access(title: "the-daily", article: "d-2", token: token),
             try await client.access(title: "the-daily", article: "d-3", token: token),
             try await client.access(title: "the-daily", article: "d-4", token: token))
        }
        #expect(try second.object()["access"] as? String == "full")
        #expect(try third.object()["access"] as? String == "full")
        let teaser = try fourth.object()
        #expect(teaser["access"] as? String == "teaser")
        #expect(teaser["articleGrant"] == nil)
        #expect(offers(teaser) == ["trial:14", "subscribe"])
    }

    @Test("a signed-in reader: exactly three free articles, then the teaser; a re-read is free; the meter is exact", arguments: TestBackend.all)
    func metered(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let start = f.clock.now()
        var answers: [[String: Any]] = []
        for (index, article) in ["a1", "a2", "a3", "a4", "a2"].enumerated() {
            // Access tokens last 15 minutes: a fresh one for each check an hour apart.
            let token = try accessToken(f, "reader@example.com")
            let response = try await withAPI(f) { client in try await client.access(article: article, token: token) }
            #expect(response.status == .ok)
            answers.append(try response.object())
            if index < 4 { f.clock.advance(by: 3_600) }
        }
        let meters = answers.map { $0["meter"] as? [String: Any] ?? [:] }
        #expect(answers.map { $0["access"] as? String } == ["full", "full", "full", "teaser", "full"])
        #expect(meters.map { $0["used"] as? Int } == [1, 2, 3, 3, 3])
        #expect(meters.map { $0["remaining"] as? Int } == [2, 1, 0, 0, 0])
        #expect(meters.map { $0["limit"] as? Int } == [3, 3, 3, 3, 3])
        #expect(meters.map { $0["consumed"] as? Bool } == [true, true, true, false, false])
        #expect(meters.allSatisfy { $0["name"] as? String == "free-articles" })
        // The oldest counted read (a1, at the start) frees a unit 30 days later.
        let resets = iso(start.addingTimeInterval(30 * 86_400))
        #expect(meters.map { $0["resetsAt"] as? String } == Array(repeating: resets, count: 5))
        #expect(answers.map { $0["articleGrant"] != nil } == [true, true, true, false, true])
        #expect(offers(answers[3]) == ["trial:14", "subscribe"])

        let account = try f.service.account("reader@example.com")
        let usage = try f.service.meterReport(subject: .account(account.id), window: 30 * 86_400, title: nil).usage
        #expect(usage.used == 3, "the re-read and the refused read are not counted")
        #expect(try f.snapshot()["reads"] == 4, "three reads and the re-read recorded; the teaser not")

        // Past the oldest read's window, a unit frees up again.
        f.clock.set(start.addingTimeInterval(30 * 86_400 + 1))
        let token = try accessToken(f, "reader@example.com")
        let later = try await withAPI(f) { client in try await client.access(article: "a5", token: token) }
        let meter = try #require(try later.object()["meter"] as? [String: Any])
        #expect(try later.object()["access"] as? String == "full")
        #expect(meter["used"] as? Int == 3 && meter["remaining"] as? Int == 0)
    }

    @Test("a device token is a reader: its checks answer 200, anonymous offers, no account meter", arguments: TestBackend.all)
    func deviceReader(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let device = try f.service.issueDeviceToken(renewing: nil).token
        let (paid, free) = try await withAPI(f) { client in
            (try await client.access(article: "a1", token: device), try await client.access(article: "f1", free: true, token: device))
        }
        #expect(paid.status == .ok)
        let body = try paid.object()
        #expect(body["access"] as? String == "teaser")
        #expect(offers(body) == ["signUp", "signIn", "trial:14"])
        let grant = try #require(try free.object()["articleGrant"] as? String)
        guard case let .articleGrant(claims) = try f.service.verifyToken(grant, kinds: [.articleGrant]) else {
            Issue.record("not a grant")
            return
        }
        guard case let .device(deviceClaims) = try f.service.verifyToken(device, kinds: [.device]) else {
            Issue.record("not a device token")
            return
        }
        #expect(claims.registered.subject == "device:\(deviceClaims.deviceID)", "the grant names the device")
    }

    @Test("JSON-LD isAccessibleForFree: true only for a publisher-free article without caps", arguments: TestBackend.all)
    func jsonLD(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let member = try accessToken(f, "member@example.com")
        let reader = try accessToken(f, "reader@example.com")
        let results = try await withAPI(f) { client in
            [
                try await client.access(article: "free-1", free: true),
                try await client.access(article: "free-2", free: true, token: member),
                try await client.access(article: "free-3", free: true, token: reader),
                try await client.access(article: "free-embargo", free: true, tags: ["embargo"]),
                try await client.access(article: "paid", token: member),
                try await client.access(title: "le-monde", article: "op", free: true, section: "opinion"),
            ]
        }
        let flags = try results.map { response in
            let body = try response.object()
            return ((body["jsonLd"] as? [String: Any])?["isAccessibleForFree"] as? Bool, body["access"] as? String)
        }
        #expect(flags.map(\.0) == [true, true, true, false, false, false])
        #expect(flags.map(\.1) == ["full", "full", "full", "teaser", "full", "none"])
        let free = try results[0].object()
        #expect((free["jsonLd"] as? [String: Any])?["hasPart"] == nil, "no gated part on a free article")
        #expect(free["meter"] == nil)
        let reading = try results[2].object()
        #expect((reading["meter"] as? [String: Any])?["consumed"] as? Bool != true, "a free article uses no unit")
    }

    @Test("X-Request-Id: a sane one echoed, a hostile or missing one replaced, on answers and errors", arguments: TestBackend.all)
    func requestID(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let header = HTTPField.Name("X-Request-Id")!
        let responses = try await withAPI(f) { client in
            [
                try await client.access(article: "a1", headers: [header: "req-42_abc.DEF"]),
                try await client.access(article: "a1", headers: [header: "evil\u{7F}id; drop"]),
                try await client.access(article: "a1", headers: [header: String(repeating: "x", count: 65)]),
                try await client.access(article: "a1"),
                try await client.post("/v1/access", "{", headers: [header: "bad-json-1"]),
                try await client.get("/nope", headers: [header: "missing-1"]),
            ]
        }
        let ids = responses.map { $0.headers[header] }
        #expect(ids[0] == "req-42_abc.DEF")
        for id in ids[1...3] {
            let id = try #require(id)
            // Made here: hex process prefix, '-', hex counter (sane by our own rule).
            let parts = id.split(separator: "-")
            #expect(parts.count == 2 && parts.allSatisfy { UInt64($0, radix: 16) != nil }, "a new id: \(id)")
        }
        #expect(Set(ids[1...3]).count == 3, "each request its own id")
        #expect(ids[4] == "bad-json-1" && responses[4].status == .badRequest)
        #expect(ids[5] == "missing-1" && responses[5].status == .notFound)
    }
}
