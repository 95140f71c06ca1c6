import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PaywallCore
import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallTokens
import Testing

/// A service over a fresh database with a small catalog: titles `euronews`, `le-monde` and
/// `the-daily`; plan `news` (euronews and le-monde); `member@example.com` with that plan,
/// `reader@example.com` signed up without membership or trial, `trial@example.com` on a trial.
func seededFixture(backend: TestBackend = .sqlite, configure: (inout ServiceConfiguration) -> Void = { _ in }) throws -> ServiceFixture {
    let f = try ServiceFixture(backend: backend, configure: configure)
    _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "Euronews SA", actor: f.admin)
    _ = try f.service.addTitle(id: "le-monde", name: "Le Monde", publisher: "Groupe Le Monde", actor: f.admin)
    _ = try f.service.addTitle(id: "the-daily", name: "The Daily", publisher: "Daily Ltd", actor: f.admin)
    _ = try f.service.addPlan(id: "news", name: "News", period: "month", titles: ["euronews", "le-monde"], actor: f.admin)
    for email in ["member@example.com", "reader@example.com", "trial@example.com"] {
        _ = try f.service.signUp(email: email, password: "correct horse battery", displayName: nil, actor: f.admin)
    }
    _ = try f.service.grantMembership(account: "member@example.com", plan: "news", until: nil, source: .admin, actor: f.admin)
    _ = try f.service.startTrial(account: "trial@example.com", actor: f.admin)
    return f
}

/// An access token for `email` (synchronous, so async tests can call it without overloads).
func accessToken(_ f: ServiceFixture, _ email: String, lifetime: TimeInterval? = nil, audience: String? = nil) throws -> String {
    try f.service.issueAccessToken(account: email, lifetime: lifetime, audience: audience).token
}

/// The application under test: the API's router, in process.
func application(_ f: ServiceFixture, deviceMinting: RateLimiter? = nil) -> some ApplicationProtocol {
    let api = deviceMinting.map { PaywallAPI(service: f.service, deviceMinting: $0) } ?? PaywallAPI(service: f.service)
    return Application(router: api.router())
}

/// Runs `body` with a client of the API over `f`'s service.
func withAPI<T: Sendable>(
    _ f: ServiceFixture, deviceMinting: RateLimiter? = nil, _ body: @Sendable (any TestClientProtocol) async throws -> T
) async throws -> T {
    try await application(f, deviceMinting: deviceMinting).test(.router, body)
}

extension TestClientProtocol {
    /// POSTs `body` (as given) with a JSON content type unless told otherwise.
    func post(
        _ uri: String, _ body: String?, token: String? = nil, contentType: String? = "application/json", headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        var fields = headers
        if let contentType { fields[.contentType] = contentType }
        if let token { fields[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: .post, headers: fields, body: body.map { ByteBuffer(string: $0) })
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }

    /// `POST /v1/access` for an article of a title.
    func access(
        title: String = "euronews", article: String, free: Bool? = nil, tags: [String]? = nil, section: String? = nil, token: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        var articleObject: [String: Any] = ["id": article]
        if let free { articleObject["free"] = free }
        if let tags { articleObject["tags"] = tags }
        if let section { articleObject["section"] = section }
        let object: [String: Any] = ["title": title, "article": articleObject, "channel": "web"]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return try await post("/v1/access", String(decoding: data, as: UTF8.self), token: token, headers: headers)
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    /// The body as a JSON object.
    func object(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(buffer: body), options: [.fragmentsAllowed])
        return try #require(value as? [String: Any], "not a JSON object: \(text)", sourceLocation: sourceLocation)
    }

    /// The `error.code` of an API error body.
    var errorCode: String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
              let error = object["error"] as? [String: Any], object.count == 1, error.count == 2, error["message"] is String
        else { return nil }
        return error["code"] as? String
    }

    var errorMessage: String? {
        let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
        return (object?["error"] as? [String: Any])?["message"] as? String
    }
}

/// The decoded claims (payload) of a compact JWS, without verifying it.
func claims(of token: String) throws -> [String: Any] {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    try #require(parts.count == 3)
    var payload = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while payload.count % 4 != 0 { payload += "=" }
    let data = try #require(Data(base64Encoded: payload))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// Offers as `type` or `type:days`, in order.
func offers(_ object: [String: Any]) -> [String] {
    (object["offers"] as? [[String: Any]] ?? []).map { offer in
        let type = offer["type"] as? String ?? "?"
        if let days = offer["days"] as? Int { return "\(type):\(days)" }
        return type
    }
}

/// The ISO 8601 form the API uses for instants.
func iso(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: date)
}
