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
import Prometheus
import Testing

@Suite("POST /v1/access/preview in process")
struct PreviewRouteTests {
    @Test("decisions for several articles, in order; nothing consumed or recorded")
    func preview() async throws {
        let f = try seededFixture()
        let reader = try accessToken(f, "reader@example.com")
        let member = try accessToken(f, "member@example.com")
        let body = #"""
            {"articles": [
              {"title": "euronews", "article": {"id": "a1"}},
              {"title": "euronews", "article": {"id": "free-1", "free": true}},
              {"title": "the-daily", "article": {"id": "d1"}},
              {"title": "le-monde", "article": {"id": "op-1", "section": "opinion"}, "channel": "app"},
              {"title": "euronews", "article": {"id": "emb", "free": true, "tags": ["embargo"]}}
            ]}
            """#
        let before = try f.snapshot()
        let (asReader, asMember, asAnonymous) = try await withAPI(f) { client in
            (try await client.post("/v1/access/preview", body, token: reader),
             try await client.post("/v1/access/preview", body, token: member),
             try await client.post("/v1/access/preview", body))
        }
        for response in [asReader, asMember, asAnonymous] {
            #expect(response.status == .ok, "\(response.text)")
            #expect(response.headers[.cacheControl] == "private, no-store")
        }
        func items(_ response: TestResponse) throws -> [[String: Any]] {
            let object = try response.object()
            #expect(object.keys.sorted() == ["articles"])
            return try #require(object["articles"] as? [[String: Any]])
        }
        let readerItems = try items(asReader)
        #expect(readerItems.map { "\($0["title"] ?? "")/\($0["article"] ?? "")" } == ["euronews/a1", "euronews/free-1", "the-daily/d1", "le-monde/op-1", "euronews/emb"])
        #expect(readerItems.map { $0["access"] as? String } == ["full", "full", "full", "none", "teaser"])
        #expect(readerItems.map { $0["metered"] as? Bool } == [true, false, true, false, false])
        #expect(readerItems.map { $0["accessibleForFree"] as? Bool } == [false, true, false, false, false])
        let memberItems = try items(asMember)
        #expect(memberItems.map { $0["access"] as? String } == ["full", "full", "full", "full", "full"])
        #expect(memberItems.map { $0["metered"] as? Bool } == [false, false, true, false, false])
        let anonymousItems = try items(asAnonymous)
        #expect(anonymousItems.map { $0["access"] as? String } == ["teaser", "full", "teaser", "none", "teaser"])
        #expect(try f.snapshot() == before, "a preview records nothing")

        // Nothing consumed: the reader still has three units, and previews of a full page are fine.
        let page = BadInputTests.previewBody(count: 100)
        let (full, check) = try await withAPI(f) { client in
            (try await client.post("/v1/access/preview", page, token: reader), try await client.access(article: "a1", token: reader))
        }
        #expect(full.status == .ok)
        #expect(try items(full).count == 100)
        #expect(try items(full).allSatisfy { $0["access"] as? String == "full" && $0["metered"] as? Bool == true })
        let meter = try #require(try check.object()["meter"] as? [String: Any])
        #expect(meter["used"] as? Int == 1 && meter["remaining"] as? Int == 2)
    }

    @Test("a spent meter shows as teaser in the preview")
    func spent() async throws {
        let f = try seededFixture()
        let reader = try accessToken(f, "reader@example.com")
        let body = #"{"articles":[{"title":"euronews","article":{"id":"a1"}},{"title":"euronews","article":{"id":"a9"}}]}"#
        let preview = try await withAPI(f) { client in
            for article in ["a1", "a2", "a3"] { _ = try await client.access(article: article, token: reader) }
            return try await client.post("/v1/access/preview", body, token: reader)
        }
        let items = try #require(try preview.object()["articles"] as? [[String: Any]])
        #expect(items.map { $0["access"] as? String } == ["full", "teaser"], "a1 is a re-read; a9 would need a fourth unit")
        #expect(items.map { $0["metered"] as? Bool } == [false, false])
    }
}

@Suite("POST /v1/devices in process")
struct DeviceRouteTests {
    @Test("a new device: 201 and a device token; renewal keeps the device (same sub), with a later expiry")
    func newAndRenewed() async throws {
        let f = try seededFixture()
        _ = try accessToken(f, "member@example.com")  // the development key exists (its creation is audited)
        let before = try f.snapshot()
        let (created, createdEmptyObject) = try await withAPI(f) { client in
            (try await client.post("/v1/devices", nil, contentType: nil), try await client.post("/v1/devices", "{}"))
        }
        #expect(created.status == .created, "\(created.text)")
        #expect(createdEmptyObject.status == .created, "\(createdEmptyObject.text)")
        #expect(created.headers[.cacheControl] == "private, no-store")
        let body = try created.object()
        #expect(body.keys.sorted() == ["deviceToken", "expiresAt"])
        let token = try #require(body["deviceToken"] as? String)
        guard case let .device(claims) = try f.service.verifyToken(token, kinds: [.device]) else {
            Issue.record("not a device token")
            return
        }
        #expect(body["expiresAt"] as? String == iso(claims.registered.expiresAt))
        #expect(claims.registered.expiresAt.timeIntervalSince(f.clock.now()) > 86_400, "long-lived")
        let other = try #require(try createdEmptyObject.object()["deviceToken"] as? String)
        #expect(try JWT.subject(other) != JWT.subject(token), "each new device its own id")
        #expect(try f.snapshot() == before, "minting writes nothing")

        f.clock.advance(by: 3_600)
        let renewed = try await withAPI(f) { client in try await client.post("/v1/devices", nil, token: token, contentType: nil) }
        #expect(renewed.status == .ok, "\(renewed.text)")
        let renewedToken = try #require(try renewed.object()["deviceToken"] as? String)
        #expect(renewedToken != token)
        #expect(try JWT.subject(renewedToken) == JWT.subject(token), "the same device")
        guard case let .device(renewedClaims) = try f.service.verifyToken(renewedToken, kinds: [.device]) else {
            Issue.record("not a device token")
            return
        }
        #expect(renewedClaims.deviceID == claims.deviceID)
        #expect(renewedClaims.registered.expiresAt > claims.registered.expiresAt)
    }

    @Test("an empty body with a JSON content type is a new device too (as an empty object is)")
    func emptyJSONBody() async throws {
        let f = try seededFixture()
        let (noBody, emptyBody) = try await withAPI(f) { client in
            (try await client.post("/v1/devices", nil), try await client.post("/v1/devices", ""))
        }
        #expect(noBody.status == .created, "\(noBody.text)")
        #expect(emptyBody.status == .created, "\(emptyBody.text)")
        #expect(try noBody.object()["deviceToken"] is String)
    }

    @Test("renewal refuses access tokens and article grants")
    func renewalKinds() async throws {
        let f = try seededFixture()
        let access = try accessToken(f, "member@example.com")
        let account = try f.service.account("member@example.com")
        let grant = try f.service.issueArticleGrant(subject: .account(account.id), title: "euronews", article: "a1", lifetime: nil, audience: nil).token
        let responses = try await withAPI(f) { client in
            [try await client.post("/v1/devices", nil, token: access, contentType: nil),
             try await client.post("/v1/devices", "{}", token: grant)]
        }
        for response in responses {
            #expect(response.status == .unauthorized)
            #expect(response.errorCode == "invalid_token")
            #expect(response.errorMessage == refusedToken)
        }
    }

    @Test("minting is rate-limited per client: 429 with Retry-After; renewals are not limited")
    func rateLimited() async throws {
        let f = try seededFixture()
        let limiter = RateLimiter(burst: 2, interval: 60)
        let (first, second, third, renewal) = try await withAPI(f, deviceMinting: limiter) { client in
            let first = try await client.post("/v1/devices", nil, contentType: nil)
            let second = try await client.post("/v1/devices", nil, contentType: nil)
            let third = try await client.post("/v1/devices", nil, contentType: nil)
            let token = try #require(try first.object()["deviceToken"] as? String)
            let renewal = try await client.post("/v1/devices", nil, token: token, contentType: nil)
            return (first, second, third, renewal)
        }
        #expect(first.status == .created && second.status == .created)
        #expect(third.status == .tooManyRequests)
        #expect(third.errorCode == "rate_limited")
        let retry = try #require(third.headers[.retryAfter].flatMap { Int($0) })
        #expect((1...60).contains(retry), "\(retry)")
        #expect(renewal.status == .ok)

        // A unit comes back after the interval (the service's clock).
        f.clock.advance(by: 60)
        let again = try await withAPI(f, deviceMinting: limiter) { client in try await client.post("/v1/devices", nil, contentType: nil) }
        #expect(again.status == .created)
    }
}

enum JWT {
    static func subject(_ token: String) throws -> String {
        try #require(try claims(of: token)["sub"] as? String)
    }
}

@Suite("JWKS, health, readiness and the API document in process")
struct OperationsRouteTests {
    @Test("JWKS: public keys only, cacheable for max-age, an ETag, 304 on If-None-Match")
    func jwks() async throws {
        let f = try seededFixture()
        _ = try accessToken(f, "member@example.com")  // makes the development key
        let response = try await withAPI(f) { client in try await client.get("/.well-known/jwks.json") }
        #expect(response.status == .ok)
        #expect(response.headers[.cacheControl] == "public, max-age=300")
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        let tag = try #require(response.headers[.eTag])
        #expect(tag.hasPrefix("\"") && tag.hasSuffix("\"") && tag.count > 2)
        let keys = try #require(try response.object()["keys"] as? [[String: Any]])
        #expect(keys.count == 1)
        let kid = try f.service.keyRing().records.map(\.kid)
        #expect(keys.compactMap { $0["kid"] as? String } == kid)
        for key in keys {
            #expect(key["d"] == nil, "no private member")
            #expect(key["p"] == nil && key["q"] == nil && key["dp"] == nil)
            #expect(key["kty"] is String)
        }
        #expect(!response.text.contains("\"d\""))

        let (cached, stale) = try await withAPI(f) { client in
            (try await client.get("/.well-known/jwks.json", headers: [.ifNoneMatch: tag]),
             try await client.get("/.well-known/jwks.json", headers: [.ifNoneMatch: "\"something-else\""]))
        }
        #expect(cached.status == .notModified)
        #expect(cached.body.readableBytes == 0)
        #expect(cached.headers[.eTag] == tag)
        #expect(cached.headers[.cacheControl] == "public, max-age=300")
        #expect(stale.status == .ok)
        #expect(stale.headers[.eTag] == tag, "the same keys, the same tag")
        // Compared as RFC 9110 says: weakly, any of a list, or *.
        for header in ["W/\(tag)", "\"other\", \(tag)", "*", " W/\(tag) , \"x\""] {
            let answer = try await withAPI(f) { client in try await client.get("/.well-known/jwks.json", headers: [.ifNoneMatch: header]) }
            #expect(answer.status == .notModified, "If-None-Match: \(header)")
        }
        for header in ["\"other\", W/\"x\"", "", "W/"] {
            let answer = try await withAPI(f) { client in try await client.get("/.well-known/jwks.json", headers: [.ifNoneMatch: header]) }
            #expect(answer.status == .ok, "If-None-Match: \(header)")
        }

        // A new key changes the tag.
        _ = try f.service.rotateKey(.ed25519, publishAhead: 600, actor: f.admin)
        let rotated = try await withAPI(f) { client in try await client.get("/.well-known/jwks.json", headers: [.ifNoneMatch: tag]) }
        #expect(rotated.status == .ok)
        #expect(rotated.headers[.eTag] != tag)
        #expect(try (rotated.object()["keys"] as? [Any])?.count == 2)
    }

    @Test("JWKS max-age follows the API's setting, else the configuration's, which key rotations respect")
    func jwksMaxAge() async throws {
        let f = try seededFixture()
        _ = try accessToken(f, "member@example.com")
        let app = Application(router: PaywallAPI(service: f.service, jwksMaxAge: 60).router())
        let response = try await app.test(.router) { client in try await client.get("/.well-known/jwks.json") }
        #expect(response.headers[.cacheControl] == "public, max-age=60")
        let configured = try seededFixture { $0.jwksMaxAge = 900 }
        _ = try accessToken(configured, "member@example.com")
        let fromConfiguration = try await withAPI(configured) { client in try await client.get("/.well-known/jwks.json") }
        #expect(fromConfiguration.headers[.cacheControl] == "public, max-age=900")
        // A key published for less than verifiers cache the key set and a minute is refused;
        // 0 (an emergency) and the cache time and a minute are taken.
        #expect(throws: ServiceError.self) { try configured.service.rotateKey(.es256, publishAhead: 600, actor: configured.admin) }
        #expect(throws: ServiceError.self) { try configured.service.rotateKey(.es256, publishAhead: 900, actor: configured.admin) }
        #expect(throws: ServiceError.self) { try configured.service.rotateKey(.es256, publishAhead: -1, actor: configured.admin) }
        #expect(try configured.service.keyRing().records.count == 1)
        _ = try configured.service.rotateKey(.es256, publishAhead: 960, actor: configured.admin)
        _ = try configured.service.rotateKey(.es256, publishAhead: 0, actor: configured.admin)
        #expect(try configured.service.keyRing().records.count == 3)
    }

    @Test("/healthz: 200 ok")
    func healthz() async throws {
        let f = try seededFixture()
        let response = try await withAPI(f) { client in try await client.get("/healthz") }
        #expect(response.status == .ok)
        #expect(try response.object()["status"] as? String == "ok")
        #expect(response.headers[.cacheControl] == "no-store")
    }

    @Test("/readyz: 200 with the policy revision and the signing key")
    func readyz() async throws {
        let f = try seededFixture()
        let issued = try f.service.issueAccessToken(account: "member@example.com", lifetime: nil, audience: nil)
        let response = try await withAPI(f) { client in try await client.get("/readyz") }
        #expect(response.status == .ok, "\(response.text)")
        let body = try response.object()
        #expect(body["status"] as? String == "ready")
        #expect(body["database"] as? Bool == true)
        #expect(body["policyRevision"] as? String == (try f.service.policy().revision))
        #expect(body["signingKey"] as? String == issued.kid)
    }

    @Test("/readyz: 503 when the database cannot be written; 200 again once it can")
    func readyzLocked() async throws {
        let f = try seededFixture(configure: { $0.store.busyTimeout = 0.2 })
        _ = try accessToken(f, "member@example.com")
        let locker = try LockHolder(path: f.path)
        defer { locker.release() }
        let (locked, health) = try await withAPI(f) { client in
            (try await client.get("/readyz"), try await client.get("/healthz"))
        }
        #expect(locked.status == .serviceUnavailable, "\(locked.text)")
        #expect(locked.errorCode == "database_locked")
        #expect(locked.errorMessage?.contains(f.path) == false, "no path given out")
        #expect(locked.headers[.retryAfter] != nil)
        #expect(health.status == .ok, "liveness does not depend on the database")
        locker.release()
        let ready = try await withAPI(f) { client in try await client.get("/readyz") }
        #expect(ready.status == .ok)
    }

    @Test("/readyz: 503 without a signing key (and no development key made)")
    func readyzWithoutKey() async throws {
        let f = try seededFixture(configure: { $0.developmentKeys = false })
        let response = try await withAPI(f) { client in try await client.get("/readyz") }
        #expect(response.status == .serviceUnavailable, "\(response.text)")
        #expect(response.errorCode == "keys_unavailable")
    }

    @Test("/openapi.json: 200, the repository's JSON document as it is; HEAD too")
    func openAPI() async throws {
        let f = try seededFixture()
        let (response, head) = try await withAPI(f) { client in
            (try await client.get("/openapi.json"), try await client.execute(uri: "/openapi.json", method: .head))
        }
        #expect(response.status == .ok)
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        let document = try response.object()
        let file = try Data(contentsOf: repositoryRoot.appendingPathComponent("Sources/PaywallHTTP/openapi.json"))
        #expect(Data(buffer: response.body) == file, "served as written")
        // The contract names every route (the document is being written; checked once it has paths).
        if let paths = document["paths"] as? [String: Any] {
            #expect((document["openapi"] as? String)?.hasPrefix("3.1") == true)
            for path in ["/v1/access", "/v1/access/preview", "/v1/devices", "/.well-known/jwks.json", "/healthz", "/readyz"] {
                #expect(paths[path] != nil, "\(path) documented")
            }
        }
        #expect(head.status == .ok)
        #expect(head.body.readableBytes == 0)
    }
}

@Suite("Rate-limit keys")
struct RateLimitKeyTests {
    @Test("IPv4 addresses are their own key; IPv6 ones share their /64")
    func keys() {
        #expect(clientRateLimitKey("203.0.113.5") == "203.0.113.5")
        #expect(clientRateLimitKey("2001:db8:1:2::1") == clientRateLimitKey("2001:db8:1:2:ffff::9"))
        #expect(clientRateLimitKey("2001:db8:1:2::1") != clientRateLimitKey("2001:db8:1:3::1"))
        #expect(clientRateLimitKey(nil) == "unknown")
    }
}

@Suite("GET /metrics and its token")
struct MetricsRouteTests {
    @Test("with PAYWALL_METRICS_TOKEN: only that bearer token reads the metrics; without it: anyone")
    func token() async throws {
        let f = try seededFixture()
        let secret = "0123456789abcdef0123456789abcdef"
        func get(_ api: PaywallAPI, _ authorization: [String?]) async throws -> [TestResponse] {
            try await Application(router: api.router()).test(.router) { client in
                var responses: [TestResponse] = []
                for value in authorization {
                    var headers: HTTPFields = [:]
                    if let value { headers[.authorization] = value }
                    responses.append(try await client.get("/metrics", headers: headers))
                }
                return responses
            }
        }
        let guarded = PaywallAPI(service: f.service, metrics: PrometheusCollectorRegistry(), metricsToken: secret)
        let refused = try await get(guarded, [nil, "Bearer wrong", "Bearer " + secret.dropLast(), "Bearer " + secret + "0", "Basic " + secret, "Bearer "])
        for response in refused {
            #expect(response.status == .unauthorized)
            #expect(try response.object()["error"].flatMap { ($0 as? [String: Any])?["code"] as? String } == "invalid_token")
            #expect(!response.text.contains("# TYPE"), "no metric leaks with the refusal")
            #expect(!response.text.contains(secret), "the token is never echoed")
        }
        let allowed = try await get(guarded, ["Bearer " + secret, "bearer  " + secret + " "])
        for response in allowed {
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
        }
        let open = try await get(PaywallAPI(service: f.service, metrics: PrometheusCollectorRegistry()), [nil])
        #expect(open.first?.status == .ok)
    }

    @Test("/metrics is a route like the others: another method is 405 with Allow; a server without a registry answers 404")
    func route() async throws {
        let f = try seededFixture()
        try await Application(router: PaywallAPI(service: f.service, metrics: PrometheusCollectorRegistry()).router()).test(.router) { client in
            let post = try await client.post("/metrics", "{}")
            #expect(post.status == .methodNotAllowed)
            #expect(post.headers[.allow] == "GET, HEAD")
            #expect(try post.object()["error"].flatMap { ($0 as? [String: Any])?["code"] as? String } == "method_not_allowed")
        }
        try await Application(router: PaywallAPI(service: f.service).router()).test(.router) { client in
            let get = try await client.get("/metrics")
            #expect(get.status == .notFound)
            #expect(try get.object()["error"].flatMap { ($0 as? [String: Any])?["code"] as? String } == "not_found")
        }
    }

    @Test("PAYWALL_METRICS_TOKEN: too short, too long or with spaces is refused by name, without showing it")
    func settings() throws {
        let good = try ServerSettings.resolve(environment: ["PAYWALL_METRICS_TOKEN": String(repeating: "k", count: 32)], flags: .init())
        #expect(good.metricsToken == String(repeating: "k", count: 32))
        #expect(try ServerSettings.resolve(environment: [:], flags: .init()).metricsToken == nil)
        for bad in ["short-secret", String(repeating: "s", count: 257), "a secret with spaces in it", "tab\tseparated-secret-value", "ünïcödé-secret-value-here"] {
            do {
                _ = try ServerSettings.resolve(environment: ["PAYWALL_METRICS_TOKEN": bad], flags: .init())
                Issue.record("accepted \(bad)")
            } catch {
                #expect(error.description.contains("PAYWALL_METRICS_TOKEN"), "\(error)")
                #expect(!error.description.contains(bad), "the secret is not shown: \(error)")
            }
        }
    }

    @Test("--host: addresses and host names are taken; a dotted number that is no address, or a malformed name, is refused before binding")
    func hosts() throws {
        for good in ["127.0.0.1", "0.0.0.0", "::1", "::", "fe80::1", "localhost", "paywall-1.internal", "10.0.0.7"] {
            var flags = ServerSettings.Flags()
            flags.host = good
            #expect(try ServerSettings.resolve(environment: [:], flags: flags).host == good)
        }
        for bad in ["", "999.1.1.1", "1.2.3", "::zz", "-web-", "web_1", "a..b", "host name", String(repeating: "a", count: 64) + ".example"] {
            #expect(throws: ServiceError.self, "\(bad)") { try ServerSettings.resolve(environment: ["PAYWALL_HOST": bad], flags: .init()) }
        }
        // Resolving is a lookup of its own, which a server makes before it opens anything.
        for (host, resolves) in [("127.0.0.1", true), ("::1", true), ("localhost", true), ("no-such-host.invalid", false)] {
            let settings = try ServerSettings.resolve(environment: ["PAYWALL_HOST": host], flags: .init())
            do {
                try settings.checkHostResolves(flags: .init())
                #expect(resolves, "\(host) resolved")
            } catch {
                #expect(!resolves && error.description.contains("PAYWALL_HOST") && error.description.contains("resolves here"), "\(host): \(error)")
            }
        }
    }
}

@Suite("A change made whose audit entry is missing, over HTTP")
struct AuditMissingAnswerTests {
    @Test("503 audit_missing, said as made, no Retry-After (nothing is to be tried again), no database detail")
    func answer() {
        let error = APIError(ServiceError.auditMissing(change: "the reload of the policy (revision abc in force)", reason: "SQLite error 8: attempt to write a readonly database"))
        #expect(error.status == .serviceUnavailable && error.code == "audit_missing")
        #expect(error.headers[.retryAfter] == nil)
        #expect(error.message.contains("was made") && error.message.contains("do not do it again") && !error.message.contains("SQLite"), "\(error.message)")
        #expect(APIError(ServiceError.overloaded).headers[.retryAfter] == "1", "other unavailable answers keep it")
    }
}
