import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PaywallHTTP
import PaywallPolicy
import PaywallService
import PaywallTestSupport
import Testing

/// Behind a trusted proxy the client is the nearest untrusted address of X-Forwarded-For;
/// from anyone else the header is ignored. Observed through the per-client rate limit of
/// device minting, over a real socket (the peer is 127.0.0.1).
@Suite("Client addresses behind trusted proxies")
struct TrustedProxyTests {
    static let forwarded = HTTPField.Name("X-Forwarded-For")!

    /// The statuses of device mintings with these X-Forwarded-For values (a burst of 1 per
    /// client, no refill during the test).
    static func mint(trusting proxies: [String], _ forwardedFor: [String?]) async throws -> [HTTPResponse.Status] {
        let f = try seededFixture { $0.trustedProxies = TrustedProxies(proxies.compactMap(CIDR.init)) }
        let api = PaywallAPI(service: f.service, deviceMinting: RateLimiter(burst: 1, interval: 3_600))
        let app = Application(router: api.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            var statuses: [HTTPResponse.Status] = []
            for value in forwardedFor {
                var headers: HTTPFields = [:]
                if let value { headers[Self.forwarded] = value }
                statuses.append(try await client.execute(uri: "/v1/devices", method: .post, headers: headers).status)
            }
            return statuses
        }
    }

    @Test("no trusted proxy: X-Forwarded-For is ignored (a client cannot pick a fresh address per request)")
    func untrusted() async throws {
        #expect(try await Self.mint(trusting: [], ["203.0.113.1", "203.0.113.2", nil]) == [.created, .tooManyRequests, .tooManyRequests])
        #expect(try await Self.mint(trusting: ["10.0.0.0/8"], ["203.0.113.1", "203.0.113.2"]) == [.created, .tooManyRequests], "the peer is not in the list")
    }

    @Test("from a trusted proxy: each forwarded client has its own limit")
    func trusted() async throws {
        #expect(try await Self.mint(trusting: ["127.0.0.1/32"], ["203.0.113.1", "203.0.113.2", "203.0.113.1"]) == [.created, .created, .tooManyRequests])
    }

    @Test("the nearest untrusted hop counts: what the client wrote to the left proves nothing")
    func rightmostUntrusted() async throws {
        let statuses = try await Self.mint(trusting: ["127.0.0.0/8", "10.0.0.0/8"], [
            "198.51.100.7, 203.0.113.1",            // client 203.0.113.1
            "198.51.100.8, 203.0.113.1, 10.1.2.3",  // a second trusted hop: still 203.0.113.1
            "not-an-address, 203.0.113.9",          // 203.0.113.9
            "203.0.113.9, garbage",                 // malformed nearest entry: the proxy itself
            "203.0.113.10, garbage",                // the proxy again: limited
        ])
        #expect(statuses == [.created, .tooManyRequests, .created, .created, .tooManyRequests])
    }

    @Test("request facts: X-Verified-Crawler only from a trusted proxy; country, referrer host and device the caller's word from the body, validated")
    func requestFacts() async throws {
        let policies = try TestFolder("paywall-request-facts")
        try """
            defaults { teaser 2 paragraphs }
            rule "crawlers" { when request.verifiedCrawler; grant full }
            rule "french" { when request.country == "FR" and request.device == "mobile"; grant full }
            rule "from search" { when request.referrerHost == "search.example"; grant full }
            """.write(to: policies.url.appendingPathComponent("paywall.policy"), atomically: true, encoding: .utf8)
        func access(trusting proxies: [String], crawlerHeader: Bool, body: String) async throws -> (HTTPResponse.Status, String?) {
            let f = try seededFixture { $0.policyDirectory = policies.url; $0.trustedProxies = TrustedProxies(proxies.compactMap(CIDR.init)) }
            let app = Application(router: PaywallAPI(service: f.service).router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            return try await app.test(.live) { client in
                var headers: HTTPFields = [.contentType: "application/json"]
                if crawlerHeader { headers[HTTPField.Name("X-Verified-Crawler")!] = "1" }
                let response = try await client.execute(uri: "/v1/access", method: .post, headers: headers, body: ByteBuffer(string: body))
                let object = try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                return (response.status, (object?["access"] as? String) ?? ((object?["error"] as? [String: Any])?["code"] as? String))
            }
        }
        let plain = #"{"title":"euronews","article":{"id":"x1"}}"#
        #expect(try await access(trusting: ["127.0.0.1/32"], crawlerHeader: true, body: plain) == (.ok, "full"))
        #expect(try await access(trusting: [], crawlerHeader: true, body: plain) == (.ok, "teaser"), "the header from anyone else is ignored")
        #expect(try await access(trusting: ["127.0.0.1/32"], crawlerHeader: false, body: plain) == (.ok, "teaser"))
        #expect(try await access(trusting: [], crawlerHeader: false, body: #"{"title":"euronews","article":{"id":"x1"},"country":"fr","device":"Mobile"}"#) == (.ok, "full"))
        #expect(try await access(trusting: [], crawlerHeader: false, body: #"{"title":"euronews","article":{"id":"x1"},"country":"FR"}"#) == (.ok, "teaser"))
        #expect(try await access(trusting: [], crawlerHeader: false, body: #"{"title":"euronews","article":{"id":"x1"},"referrerHost":"Search.Example"}"#) == (.ok, "full"))
        let bad = [#""country":"FRA""#, #""country":"F1""#, #""referrerHost":"a b""#, #""referrerHost":"""#, #""device":"a phone""#, #""device":"""#]
        for field in bad {
            let body = #"{"title":"euronews","article":{"id":"x1"},"# + field + "}"
            #expect(try await access(trusting: [], crawlerHeader: false, body: body) == (.badRequest, "invalid_field"), "\(field)")
        }
    }

    @Test("PAYWALL_TRUSTED_PROXIES and --trusted-proxies: ranges or bare addresses; anything else refused by name")
    func settings() throws {
        let parsed = try ServiceConfiguration.resolve(environment: ["PAYWALL_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,2001:db8::/32"])
        #expect(parsed.trustedProxies.ranges.map(\.description) == [CIDR("10.0.0.0/8"), CIDR("192.0.2.7/32"), CIDR("2001:db8::/32")].compactMap { $0?.description })
        var overrides = ServiceConfiguration.Overrides()
        overrides.trustedProxies = "::1"
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_TRUSTED_PROXIES": "bad"], overrides: overrides).trustedProxies.ranges.count == 1, "the flag wins")
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_TRUSTED_PROXIES": " "]).trustedProxies.ranges.isEmpty, "empty: none")
        for bad in ["10.0.0.0/33", "proxy.example", "10.0.0.1,", ","] {
            #expect(throws: ServiceError.self, "\(bad)") { try ServiceConfiguration.resolve(environment: ["PAYWALL_TRUSTED_PROXIES": bad]) }
        }
        do {
            _ = try ServiceConfiguration.resolve(environment: ["PAYWALL_TRUSTED_PROXIES": "nope"])
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("PAYWALL_TRUSTED_PROXIES"))
        }
    }

    @Test("a client behind a trusted proxy is the forwarded address, never one it wrote itself")
    func resolution() {
        let proxies = TrustedProxies([CIDR("10.0.0.0/8")].compactMap { $0 })
        #expect(proxies.client(peer: "10.0.0.1", forwardedFor: ["1.2.3.4, 5.6.7.8"]) == "5.6.7.8")
        #expect(proxies.client(peer: "10.0.0.1", forwardedFor: ["1.2.3.4", "5.6.7.8, 10.9.9.9"]) == "5.6.7.8", "several header lines, a second proxy hop")
        #expect(proxies.client(peer: "10.0.0.1", forwardedFor: ["10.0.0.2"]) == "10.0.0.2", "every hop trusted: the farthest")
        #expect(proxies.client(peer: "10.0.0.1", forwardedFor: ["5.6.7.8, x"]) == "10.0.0.1")
        #expect(proxies.client(peer: "192.0.2.1", forwardedFor: ["5.6.7.8"]) == "192.0.2.1", "an untrusted peer")
        #expect(proxies.client(peer: nil, forwardedFor: ["5.6.7.8"]) == nil)
    }
}
