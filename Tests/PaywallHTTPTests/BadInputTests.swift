import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PaywallCore
import PaywallHTTP
import PaywallService
import PaywallTestSupport
import Testing

/// A request that must be refused: its status, its stable code, and nothing written.
struct Refusal: Sendable, CustomTestStringConvertible {
    var name: String
    var method: HTTPRequest.Method = .post
    var uri: String = "/v1/access"
    var body: String?
    var contentType: String? = "application/json"
    var contentEncoding: String?
    var authorization: String?
    var status: HTTPResponse.Status
    var code: String
    var message: String?

    var testDescription: String { name }
}

/// A body that would record a metered read if it were taken.
let goodBody = #"{"title":"euronews","article":{"id":"a1","free":false,"section":"world","tags":["x"],"publishedAt":"2026-01-01T00:00:00Z"},"channel":"web"}"#

let refusedToken = "the token was refused"

@Suite("Bad input: a stable code, the right status, nothing written")
struct BadInputTests {
    static let bodies: [Refusal] = [
        Refusal(name: "malformed JSON", body: #"{"title": "euronews", "article": {"id": "a1"}"#, status: .badRequest, code: "invalid_json"),
        Refusal(name: "an empty body", body: "", status: .badRequest, code: "invalid_json"),
        Refusal(name: "trailing garbage", body: #"{"title":"euronews","article":{"id":"a1"}} x"#, status: .badRequest, code: "invalid_json"),
        Refusal(name: "a JSON array", body: #"[{"title":"euronews","article":{"id":"a1"}}]"#, status: .badRequest, code: "invalid_json"),
        Refusal(name: "a JSON string", body: #""euronews""#, status: .badRequest, code: "invalid_json"),
        Refusal(name: "duplicate member names", body: #"{"title":"euronews","title":"le-monde","article":{"id":"a1"}}"#, status: .badRequest, code: "invalid_json"),
        Refusal(name: "nested too deep", body: #"{"title":"euronews","article":{"id":"a1","tags":[[[[[[[[[["x"]]]]]]]]]]}}"#, status: .badRequest, code: "invalid_json"),
        Refusal(name: "title a number", body: #"{"title":1,"article":{"id":"a1"}}"#, status: .badRequest, code: "invalid_field", message: "'title' must be a string"),
        Refusal(name: "article.free a string", body: #"{"title":"euronews","article":{"id":"a1","free":"yes"}}"#, status: .badRequest, code: "invalid_field", message: "'article.free' must be true or false"),
        Refusal(name: "article a string", body: #"{"title":"euronews","article":"a1"}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "article.id a number", body: #"{"title":"euronews","article":{"id":7}}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "tags not strings", body: #"{"title":"euronews","article":{"id":"a1","tags":[1]}}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "too many tags", body: #"{"title":"euronews","article":{"id":"a1","tags":[\#((0..<33).map { "\"t\($0)\"" }.joined(separator: ","))]}}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "publishedAt not an instant", body: #"{"title":"euronews","article":{"id":"a1","publishedAt":"yesterday"}}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "missing title", body: #"{"article":{"id":"a1"}}"#, status: .badRequest, code: "missing_field", message: "'title' is required"),
        Refusal(name: "title null", body: #"{"title":null,"article":{"id":"a1"}}"#, status: .badRequest, code: "missing_field"),
        Refusal(name: "missing article", body: #"{"title":"euronews"}"#, status: .badRequest, code: "missing_field", message: "'article' is required"),
        Refusal(name: "missing article.id", body: #"{"title":"euronews","article":{"free":true}}"#, status: .badRequest, code: "missing_field", message: "'article.id' is required"),
        Refusal(name: "unknown top-level field", body: #"{"title":"euronews","article":{"id":"a1"},"reader":"admin"}"#, status: .badRequest, code: "unknown_field", message: "unknown field 'reader'"),
        Refusal(name: "unknown nested field", body: #"{"title":"euronews","article":{"id":"a1","price":0}}"#, status: .badRequest, code: "unknown_field", message: "unknown field 'article.price'"),
        Refusal(name: "channel not in the enum", body: #"{"title":"euronews","article":{"id":"a1"},"channel":"fax"}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "channel a number", body: #"{"title":"euronews","article":{"id":"a1"},"channel":3}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "an invalid title id", body: #"{"title":"Euro News!","article":{"id":"a1"}}"#, status: .badRequest, code: "invalid_identifier"),
        Refusal(name: "a blank article id", body: #"{"title":"euronews","article":{"id":"  "}}"#, status: .badRequest, code: "invalid_value"),
        Refusal(name: "an article id too long", body: #"{"title":"euronews","article":{"id":"\#(String(repeating: "a", count: 257))"}}"#, status: .badRequest, code: "invalid_value"),
        Refusal(name: "unknown title", body: #"{"title":"no-such-title","article":{"id":"a1"}}"#, status: .notFound, code: "title_not_found"),
        Refusal(name: "oversized body", body: #"{"title":"euronews","article":{"id":"a1","section":""# + String(repeating: "x", count: 64 * 1024) + #""}}"#, status: .contentTooLarge, code: "body_too_large"),
        Refusal(name: "text/plain", body: goodBody, contentType: "text/plain", status: .unsupportedMediaType, code: "unsupported_media_type"),
        Refusal(name: "form-encoded", body: "title=euronews", contentType: "application/x-www-form-urlencoded", status: .unsupportedMediaType, code: "unsupported_media_type"),
        Refusal(name: "no content type", body: goodBody, contentType: nil, status: .unsupportedMediaType, code: "unsupported_media_type"),
        Refusal(name: "gzip-encoded", body: goodBody, contentEncoding: "gzip", status: .unsupportedMediaType, code: "unsupported_media_type"),
        Refusal(name: "application/jsonx", body: goodBody, contentType: "application/jsonx", status: .unsupportedMediaType, code: "unsupported_media_type"),
        // Preview.
        Refusal(name: "preview of 0 articles", uri: "/v1/access/preview", body: #"{"articles":[]}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "preview of 101 articles", uri: "/v1/access/preview", body: previewBody(count: 101), status: .badRequest, code: "invalid_field"),
        Refusal(name: "preview without articles", uri: "/v1/access/preview", body: "{}", status: .badRequest, code: "missing_field"),
        Refusal(name: "preview articles not a list", uri: "/v1/access/preview", body: #"{"articles":{"title":"euronews"}}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "preview item not an object", uri: "/v1/access/preview", body: #"{"articles":["a1"]}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "preview item unknown field", uri: "/v1/access/preview", body: #"{"articles":[{"title":"euronews","article":{"id":"a1"},"x":1}]}"#, status: .badRequest, code: "unknown_field", message: "unknown field 'articles[0].x'"),
        Refusal(name: "preview unknown field", uri: "/v1/access/preview", body: #"{"articles":[{"title":"euronews","article":{"id":"a1"}}],"reader":"x"}"#, status: .badRequest, code: "unknown_field"),
        Refusal(name: "preview unknown title with a malformed article id", uri: "/v1/access/preview", body: #"{"articles":[{"title":"nope","article":{"id":" "}}]}"#, status: .badRequest, code: "invalid_value"),
        Refusal(name: "preview malformed title", uri: "/v1/access/preview", body: #"{"articles":[{"title":"euronews","article":{"id":"a1"}},{"title":"No Such!","article":{"id":"a2"}}]}"#, status: .badRequest, code: "invalid_identifier"),
        Refusal(name: "preview channel not in the enum", uri: "/v1/access/preview", body: #"{"articles":[{"title":"euronews","article":{"id":"a1"},"channel":"fax"}]}"#, status: .badRequest, code: "invalid_field"),
        Refusal(name: "preview text/plain", uri: "/v1/access/preview", body: previewBody(count: 1), contentType: "text/plain", status: .unsupportedMediaType, code: "unsupported_media_type"),
        // Devices.
        Refusal(name: "devices with an unknown field", uri: "/v1/devices", body: #"{"device":"mine"}"#, status: .badRequest, code: "unknown_field"),
        Refusal(name: "devices with a JSON array", uri: "/v1/devices", body: "[]", status: .badRequest, code: "invalid_json"),
        Refusal(name: "devices oversized body", uri: "/v1/devices", body: "{" + String(repeating: " ", count: 64 * 1024) + "}", status: .contentTooLarge, code: "body_too_large"),
        Refusal(name: "devices without a content type", uri: "/v1/devices", body: "{}", contentType: nil, status: .unsupportedMediaType, code: "unsupported_media_type"),
        Refusal(name: "devices text/plain", uri: "/v1/devices", body: "hello", contentType: "text/plain", status: .unsupportedMediaType, code: "unsupported_media_type"),
        // Routes and methods.
        Refusal(name: "unknown route", method: .get, uri: "/v1/nothing-here", contentType: nil, status: .notFound, code: "not_found"),
        Refusal(name: "unknown route POST", uri: "/v2/access", body: goodBody, status: .notFound, code: "not_found"),
        Refusal(name: "GET /v1/access", method: .get, uri: "/v1/access", contentType: nil, status: .methodNotAllowed, code: "method_not_allowed"),
        Refusal(name: "PUT /v1/access", method: .put, uri: "/v1/access", body: goodBody, status: .methodNotAllowed, code: "method_not_allowed"),
        Refusal(name: "GET /v1/access/preview", method: .get, uri: "/v1/access/preview", contentType: nil, status: .methodNotAllowed, code: "method_not_allowed"),
        Refusal(name: "GET /v1/devices", method: .get, uri: "/v1/devices", contentType: nil, status: .methodNotAllowed, code: "method_not_allowed"),
        Refusal(name: "DELETE /healthz", method: .delete, uri: "/healthz", contentType: nil, status: .methodNotAllowed, code: "method_not_allowed"),
        Refusal(name: "POST /readyz", uri: "/readyz", body: "{}", status: .methodNotAllowed, code: "method_not_allowed"),
        Refusal(name: "POST /.well-known/jwks.json", uri: "/.well-known/jwks.json", body: "{}", status: .methodNotAllowed, code: "method_not_allowed"),
        Refusal(name: "POST /openapi.json", uri: "/openapi.json", body: "{}", status: .methodNotAllowed, code: "method_not_allowed"),
    ]

    static func previewBody(count: Int) -> String {
        let items = (0..<count).map { #"{"title":"euronews","article":{"id":"p\#($0)"}}"# }
        return #"{"articles":[\#(items.joined(separator: ","))]}"#
    }

    @Test("refused bodies, types, routes and methods", arguments: bodies)
    func refused(_ refusal: Refusal) async throws {
        let f = try seededFixture()
        // A signed-in reader with units left: had the request been taken, a read would be recorded.
        let token = try accessToken(f, "reader@example.com")
        try await expectRefused(f, refusal, authorization: refusal.authorization ?? "Bearer \(token)")
    }

    @Test("the refusals also hold without a token (an anonymous reader)", arguments: bodies.filter { $0.uri != "/v1/devices" })
    func refusedAnonymous(_ refusal: Refusal) async throws {
        let f = try seededFixture()
        try await expectRefused(f, refusal, authorization: nil)
    }

    @Test("405 names the methods a route takes (Allow); HEAD answers where GET does")
    func allow() async throws {
        let f = try seededFixture()
        let (post, get, options, head, headPost) = try await withAPI(f) { client in
            (try await client.execute(uri: "/v1/access", method: .get),
             try await client.execute(uri: "/healthz", method: .post),
             try await client.execute(uri: "/v1/devices", method: .options),
             try await client.execute(uri: "/healthz", method: .head),
             try await client.execute(uri: "/v1/access", method: .head))
        }
        #expect(post.status == .methodNotAllowed && post.headers[.allow] == "POST")
        #expect(get.status == .methodNotAllowed && get.headers[.allow] == "GET, HEAD")
        #expect(options.status == .methodNotAllowed && options.errorCode == "method_not_allowed")
        #expect(head.status == .ok && head.body.readableBytes == 0)
        #expect(headPost.status == .methodNotAllowed)
    }

    @Test("unusual methods on routes with a path parameter: 405 with the route's Allow, not 404")
    func allowOnPatterns() async throws {
        let f = try seededFixture()
        let (trace, query, unknownPath, deeper, empty) = try await withAPI(f) { client in
            (try await client.execute(uri: "/admin/v1/titles/euronews", method: .init("TRACE")!),
             try await client.execute(uri: "/v1/me/sessions/abc", method: .init("QUERY")!),
             try await client.execute(uri: "/admin/v1/nothing/here", method: .init("TRACE")!),
             try await client.execute(uri: "/admin/v1/titles/euronews/extra", method: .init("TRACE")!),
             try await client.execute(uri: "/admin/v1/titles/", method: .init("TRACE")!))
        }
        #expect(trace.status == .methodNotAllowed && trace.headers[.allow] == "GET, HEAD, PATCH")
        #expect(query.status == .methodNotAllowed && query.headers[.allow] == "DELETE")
        #expect(unknownPath.status == .notFound && unknownPath.errorCode == "not_found")
        #expect(deeper.status == .notFound, "a pattern matches whole segments only")
        #expect(empty.status == .notFound, "an empty segment is no title")
    }

    @Test("a body of exactly the limit is read; one byte more is 413")
    func limit() async throws {
        let f = try seededFixture()
        let prefix = #"{"title":"euronews","article":{"id":"a1","section":""#
        let suffix = #""}}"#
        let exact = prefix + String(repeating: "x", count: 64 * 1024 - prefix.utf8.count - suffix.utf8.count) + suffix
        #expect(exact.utf8.count == 64 * 1024)
        let (fits, over) = try await withAPI(f) { client in
            (try await client.post("/v1/access", exact), try await client.post("/v1/access", exact + " "))
        }
        #expect(fits.status == .ok, "\(fits.text.prefix(200))")
        #expect(over.status == .contentTooLarge)
        #expect(over.errorCode == "body_too_large")
    }

    func expectRefused(_ f: ServiceFixture, _ refusal: Refusal, authorization: String?, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let before = try f.snapshot()
        let response = try await withAPI(f) { client in
            var headers: HTTPFields = [:]
            if let contentType = refusal.contentType { headers[.contentType] = contentType }
            if let encoding = refusal.contentEncoding { headers[.contentEncoding] = encoding }
            if let authorization { headers[.authorization] = authorization }
            return try await client.execute(uri: refusal.uri, method: refusal.method, headers: headers, body: refusal.body.map { ByteBuffer(string: $0) })
        }
        #expect(response.status == refusal.status, "\(refusal.name): \(response.text.prefix(300))", sourceLocation: sourceLocation)
        #expect(response.errorCode == refusal.code, "\(refusal.name): \(response.text.prefix(300))", sourceLocation: sourceLocation)
        if let message = refusal.message {
            #expect(response.errorMessage == message, sourceLocation: sourceLocation)
        }
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
        #expect(response.headers[.cacheControl] == "no-store", sourceLocation: sourceLocation)
        #expect(try f.snapshot() == before, "\(refusal.name) wrote nothing", sourceLocation: sourceLocation)
    }
}

@Suite("Tokens that are refused: 401 invalid_token with a generic message, nothing written")
struct RefusedTokenTests {
    enum Case: String, CaseIterable, Sendable {
        case garbage, tampered, expired, wrongAudience, articleGrant, compGrant, otherKey, unsigned
        case notYetValid
    }

    /// A token of the given kind of wrongness, minted by `f`'s service.
    static func token(_ kind: Case, _ f: ServiceFixture) throws -> String {
        switch kind {
        case .garbage:
            return "not-a-token"
        case .tampered:
            var token = try accessToken(f, "member@example.com")
            // Change one character of the signature.
            let last = token.removeLast()
            token.append(last == "A" ? "B" : "A")
            return token
        case .expired:
            let token = try accessToken(f, "member@example.com", lifetime: 60)
            // Past the verifier's 30-second leeway.
            f.clock.advance(by: 60 + 31)
            return token
        case .notYetValid:
            let token = try accessToken(f, "member@example.com")
            f.clock.advance(by: -3_600)
            return token
        case .wrongAudience:
            return try accessToken(f, "member@example.com", audience: "another-service")
        case .articleGrant:
            let account = try f.service.account("member@example.com")
            return try f.service.issueArticleGrant(subject: .account(account.id), title: "euronews", article: "a1", lifetime: nil, audience: nil).token
        case .compGrant:
            return try f.service.issueCompGrant(account: "member@example.com", titles: ["euronews"], days: 7, audience: nil, actor: f.admin).token
        case .otherKey:
            let other = try seededFixture()
            return try accessToken(other, "member@example.com")
        case .unsigned:
            let real = try accessToken(f, "member@example.com").split(separator: ".")
            // alg "none", the real claims, no signature.
            let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString()
                .replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            return "\(header).\(real[1])."
        }
    }

    @Test("a refused bearer token on every route that reads one", arguments: Case.allCases, ["/v1/access", "/v1/access/preview", "/v1/devices"])
    func refused(_ kind: Case, _ uri: String) async throws {
        let f = try seededFixture()
        let token = try Self.token(kind, f)
        let before = try f.snapshot()
        let body = uri == "/v1/access/preview" ? BadInputTests.previewBody(count: 2) : uri == "/v1/devices" ? nil : goodBody
        let response = try await withAPI(f) { client in
            try await client.post(uri, body, token: token, contentType: body == nil ? nil : "application/json")
        }
        #expect(response.status == .unauthorized, "\(kind) on \(uri): \(response.text)")
        #expect(response.errorCode == "invalid_token")
        #expect(response.errorMessage == refusedToken, "no reason given out")
        #expect(response.headers[.wwwAuthenticate] == "Bearer")
        #expect(try f.snapshot() == before)
    }

    @Test("the same token is accepted when valid (the cases above fail for their reason alone)")
    func control() async throws {
        let f = try seededFixture()
        let token = try accessToken(f, "member@example.com")
        let response = try await withAPI(f) { client in try await client.post("/v1/access", goodBody, token: token) }
        #expect(response.status == .ok)
        #expect(try response.object()["access"] as? String == "full")
    }

    @Test("a cached token is refused once it expires (past the 30-second leeway)")
    func cachedThenExpired() async throws {
        let f = try seededFixture()
        let token = try accessToken(f, "member@example.com", lifetime: 120)
        let first = try await withAPI(f) { client in try await client.post("/v1/access", goodBody, token: token) }
        #expect(first.status == .ok)
        f.clock.advance(by: 120 + 20)
        let withinLeeway = try await withAPI(f) { client in try await client.post("/v1/access", goodBody, token: token) }
        #expect(withinLeeway.status == .ok, "expired 20 s ago: within the leeway")
        f.clock.advance(by: 11)
        let second = try await withAPI(f) { client in try await client.post("/v1/access", goodBody, token: token) }
        #expect(second.status == .unauthorized)
        #expect(second.errorCode == "invalid_token")
    }

    @Test("a malformed Authorization header: 401 invalid_token", arguments: [
        "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer", "Token abc", "Bearer" + String(repeating: " ", count: 3),
        "Bearer " + String(repeating: "a", count: 8_193),
    ])
    func malformedHeader(_ header: String) async throws {
        let f = try seededFixture()
        let before = try f.snapshot()
        let responses = try await withAPI(f) { client in
            [
                try await client.post("/v1/access", goodBody, headers: [.authorization: header]),
                try await client.post("/v1/access/preview", BadInputTests.previewBody(count: 1), headers: [.authorization: header]),
                try await client.post("/v1/devices", nil, contentType: nil, headers: [.authorization: header]),
            ]
        }
        for response in responses {
            #expect(response.status == .unauthorized, "\(header.prefix(20)): \(response.text)")
            #expect(response.errorCode == "invalid_token")
            #expect(response.headers[.wwwAuthenticate] == "Bearer")
        }
        #expect(try f.snapshot() == before)
    }

    @Test("a token for a deleted account is refused")
    func deletedAccount() async throws {
        let f = try seededFixture()
        let token = try accessToken(f, "reader@example.com")
        try deleteAccount(f, "reader@example.com")
        let before = try f.snapshot()
        let response = try await withAPI(f) { client in try await client.post("/v1/access", goodBody, token: token) }
        #expect(response.status == .unauthorized)
        #expect(response.errorCode == "invalid_token")
        #expect(try f.snapshot() == before)
    }

    func deleteAccount(_ f: ServiceFixture, _ email: String) throws {
        _ = try f.service.deleteAccount(email, actor: f.admin)
    }
}
