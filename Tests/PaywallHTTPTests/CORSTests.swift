import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import PaywallHTTP
import PaywallService
import PaywallTestSupport
import Testing

@Suite("Cross-origin calls from a publisher's front end (PAYWALL_CORS_ORIGINS)")
struct CORSTests {
    static let front = "https://news.example.com"

    func withCORS<T: Sendable>(_ f: ServiceFixture, origins: Set<String>, _ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        try await Application(router: PaywallAPI(service: f.service, corsOrigins: origins).router()).test(.router, body)
    }

    static func headers(origin: String, _ more: [(String, String)] = []) -> HTTPFields {
        var fields: HTTPFields = [HTTPField.Name("Origin")!: origin]
        for (name, value) in more { fields[HTTPField.Name(name)!] = value }
        return fields
    }

    @Test("a listed origin: its preflight answered, its calls and their errors carry the headers")
    func listedOrigin() async throws {
        let f = try seededFixture()
        let token = try accessToken(f, "reader@example.com")
        let (preflight, call, refused) = try await withCORS(f, origins: [Self.front]) { client in
            (try await client.execute(uri: "/v1/access", method: .options, headers: Self.headers(origin: Self.front, [
                ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "authorization, content-type")])),
             try await client.post("/v1/access", #"{"title":"euronews","article":{"id":"a1"}}"#, token: token, headers: Self.headers(origin: Self.front)),
             try await client.post("/v1/access", #"{"title":"nope","article":{"id":"a1"}}"#, token: token, headers: Self.headers(origin: Self.front)))
        }
        #expect(preflight.status == .noContent)
        #expect(preflight.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == Self.front)
        #expect(preflight.headers[HTTPField.Name("Access-Control-Allow-Methods")!]?.contains("POST") == true)
        #expect(preflight.headers[HTTPField.Name("Access-Control-Allow-Headers")!]?.contains("Authorization") == true)
        #expect(preflight.headers[HTTPField.Name("Access-Control-Allow-Credentials")!] == nil)
        #expect(call.status == .ok)
        #expect(call.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == Self.front)
        #expect(call.headers[values: .vary].contains("Origin"))
        #expect(refused.status == .notFound && refused.errorCode == "title_not_found")
        #expect(refused.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == Self.front, "the page can read the error")
    }

    @Test("another origin, the admin API, or no origins configured: no CORS header; the preflight is 405 as before", arguments: [
        ("https://evil.example", "/v1/access", true), ("https://news.example.com.evil.example", "/v1/access", true),
        ("https://news.example.com", "/admin/v1/titles", true), ("https://news.example.com", "/v1/access", false),
    ])
    func notAllowed(origin: String, path: String, configured: Bool) async throws {
        let f = try seededFixture()
        let preflight = try await withCORS(f, origins: configured ? [Self.front] : []) { client in
            try await client.execute(uri: path, method: .options, headers: Self.headers(origin: origin, [("Access-Control-Request-Method", "POST")]))
        }
        #expect(preflight.status == .methodNotAllowed)
        #expect(preflight.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == nil)
    }

    @Test("the JWKS, cached by shared caches, varies by Origin with or without one; the webhooks are not cross-origin")
    func jwksVaries() async throws {
        let f = try seededFixture()
        let (plain, fromFront, webhook) = try await withCORS(f, origins: [Self.front]) { client in
            (try await client.execute(uri: "/.well-known/jwks.json", method: .get),
             try await client.execute(uri: "/.well-known/jwks.json", method: .get, headers: Self.headers(origin: Self.front)),
             try await client.execute(uri: "/v1/billing/stripe", method: .options, headers: Self.headers(origin: Self.front, [("Access-Control-Request-Method", "POST")])))
        }
        #expect(plain.status == .ok && plain.headers[values: .vary].contains("Origin"))
        #expect(plain.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == nil)
        #expect(fromFront.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == Self.front)
        #expect(webhook.status == .methodNotAllowed && webhook.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == nil)
    }

    @Test("PAYWALL_CORS_ORIGINS: origins as browsers send them; anything else refused before binding", arguments: [
        ("https://news.example.com", true), ("https://a.example, http://localhost:3000", true),
        ("*", false), ("https://news.example.com/", false), ("news.example.com", false), ("https://News.example.com", false),
        ("https://news.example.com:99999", false), ("ftp://x.example", false), ("https://", false),
    ])
    func settings(_ value: String, valid: Bool) {
        let result = Result { () throws(ServiceError) in try ServerSettings.resolve(environment: ["PAYWALL_CORS_ORIGINS": value], flags: .init()) }
        switch result {
        case let .success(settings): #expect(valid && !settings.corsOrigins.isEmpty, "\(value)")
        case let .failure(error): #expect(!valid && error.description.contains("PAYWALL_CORS_ORIGINS"), "\(value): \(error)")
        }
    }
}
